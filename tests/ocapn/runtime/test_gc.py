"""Distributed GC: exports released on both sides, answers released by gc-answers."""

from __future__ import annotations

import gc
from typing import Any

from charter.ocapn.runtime import Runtime

from .conftest import MakeRuntime, eventually


def only_session(rt: Runtime) -> Any:
    (peer,) = rt.sessions
    return peer


class Thing:
    def __call__(self) -> str:
        return "thing"


async def test_exports_released_when_peer_drops_them(make_runtime: MakeRuntime) -> None:
    a, b = await make_runtime("alice"), await make_runtime("bob")
    seen: list[int] = []
    echo = await a.enliven(b.register(lambda *args: seen.append(len(args))))
    a_peer = only_session(a)
    thing = Thing()
    # four references in one message and one in another: wire count 5
    echo.send_only(thing, thing, thing, thing)
    echo.send_only(thing)
    await eventually(lambda: seen == [4, 1])
    # bob's echo kept nothing: its RemoteRef died and bob sent op:gc-exports
    await eventually(lambda: a_peer.session.export_refcount(thing) == 0)
    assert thing not in [e.handle for e in a_peer.session._exports.values()]


async def test_import_released_when_local_reference_dropped(make_runtime: MakeRuntime) -> None:
    a, b = await make_runtime("alice"), await make_runtime("bob")
    made: list[Thing] = []

    def maker() -> Thing:
        made.append(Thing())
        return made[-1]

    factory = await a.enliven(b.register(maker))
    b_peer = only_session(b)
    base = b_peer.session.export_count  # the maker itself
    ref = await factory()
    assert await ref() == "thing"
    assert b_peer.session.export_refcount(made[0]) == 1
    del ref
    gc.collect()
    await eventually(lambda: b_peer.session.export_refcount(made[0]) == 0)
    await eventually(lambda: b_peer.session.export_count == base)


async def test_repeated_receipt_counts_until_dropped(make_runtime: MakeRuntime) -> None:
    a, b = await make_runtime("alice"), await make_runtime("bob")
    thing = Thing()
    getter = await a.enliven(b.register(lambda: thing))
    b_peer = only_session(b)
    r1 = await getter()
    r2 = await getter()
    assert r1 is r2  # one RemoteRef per position
    assert b_peer.session.export_refcount(thing) == 2
    del r1, r2
    gc.collect()
    await eventually(lambda: b_peer.session.export_refcount(thing) == 0)


async def test_answers_and_resolvers_released(make_runtime: MakeRuntime) -> None:
    a, b = await make_runtime("alice"), await make_runtime("bob")
    ref = await a.enliven(b.register(lambda x: x + 1))
    a_peer, b_peer = only_session(a), only_session(b)
    for i in range(20):
        assert await ref(i) == i + 1
    # every answer was released by op:gc-answers, every resolver by op:gc-exports
    await eventually(lambda: b_peer.session.answer_count == 0)
    await eventually(lambda: a_peer.session.export_count == 0)


async def test_greeter_style_round_trip_releases_everything(make_runtime: MakeRuntime) -> None:
    a, b = await make_runtime("alice"), await make_runtime("bob")
    greeted: list[str] = []

    def greeter(target: Any) -> Any:
        return target.send("Hello")

    ref = await a.enliven(b.register(greeter))
    assert await ref(lambda text: greeted.append(text) or "ok") == "ok"
    assert greeted == ["Hello"]
    a_peer, b_peer = only_session(a), only_session(b)
    gc.collect()
    await eventually(lambda: a_peer.session.answer_count == 0 and b_peer.session.answer_count == 0)
    await eventually(lambda: a_peer.session.export_count == 0 and b_peer.session.export_count == 1)
