"""Calls, errors, promise chains, listen, accessors and pipelining between two runtimes."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from charter.codec.syrup import Record, Symbol
from charter.ocapn.locator import SturdyRef
from charter.ocapn.runtime import Promise, PromiseBrokenError, RemoteRef, Runtime

from .conftest import MakeRuntime, Wire, eventually

S = Symbol


class Car:
    def __init__(self, color: str, model: str) -> None:
        self.color, self.model = color, model

    def __call__(self) -> str:
        return f"Vroom! I am a {self.color} {self.model} car!"


def car_factory(spec: Any) -> Car:
    color, model = spec  # a malformed spec raises: the promise breaks
    return Car(color.name, model.name)


def car_factory_builder() -> Any:
    return car_factory


class Counter:
    """Method dispatch: the first argument names the method."""

    def __init__(self) -> None:
        self.n = 0

    def add(self, k: int) -> int:
        self.n += k
        return self.n

    async def slow_double(self, k: int) -> int:
        return 2 * k


async def two(make_runtime: MakeRuntime) -> tuple[Runtime, Runtime]:
    return await make_runtime("alice"), await make_runtime("bob")


async def test_call_and_method_dispatch(make_runtime: MakeRuntime) -> None:
    a, b = await two(make_runtime)
    greeter = await a.enliven(b.register(lambda name, n: f"hello {name} {n}"))
    assert isinstance(greeter, RemoteRef)
    assert await greeter("world", 42) == "hello world 42"
    counter = await a.enliven(b.register(Counter()))
    assert await counter(S("add"), 2) == 2
    assert await counter.send(S("add"), 3) == 5
    assert await counter(S("slow-double"), 21) == 42
    with pytest.raises(PromiseBrokenError, match="no method"):
        await counter(S("missing"))
    # the same session is reused
    assert len(a.sessions) == 1 and len(b.sessions) == 1


async def test_exception_breaks_promise_with_error(make_runtime: MakeRuntime) -> None:
    a, b = await two(make_runtime)

    def boom() -> None:
        raise ValueError("bad input")

    ref = await a.enliven(b.register(boom))
    with pytest.raises(PromiseBrokenError, match="ValueError: bad input") as info:
        await ref()
    assert info.value.reason == Record(S("desc:error"), "ValueError: bad input")
    with pytest.raises(PromiseBrokenError, match="no object is registered"):
        await a.enliven(SturdyRef(b.location(), b"no-such-swiss"))


async def test_data_values_roundtrip(make_runtime: MakeRuntime) -> None:
    a, b = await two(make_runtime)
    echo = await a.enliven(b.register(lambda *args: list(args)))
    value = [
        1,
        -2,
        10**30,
        1.5,
        "text",
        b"bytes",
        S("sym"),
        True,
        False,
        {"k": [1]},
        Record(S("point"), 1, 2),
        frozenset({1, 2}),
    ]
    assert await echo(*value) == value


async def test_pipelining_three_calls_one_round_trip(make_runtime: MakeRuntime, wire: Wire) -> None:
    a, b = await two(make_runtime)
    builder = await a.enliven(b.register(car_factory_builder))
    wire.writers.clear()
    seen: list[list[str | None]] = []
    factory = builder.send()
    car = factory.send([S("red"), S("zoomracer")])
    noise = car.send()
    noise.on_settle(lambda ok, v: seen.append(list(wire.writers)))
    assert await noise == "Vroom! I am a red zoomracer car!"
    # alice wrote once (three op:deliver), bob wrote once (the answers)
    assert seen == [["alice", "bob"]]


async def test_pipelining_to_a_broken_promise_breaks_everything(make_runtime: MakeRuntime) -> None:
    a, b = await two(make_runtime)
    builder = await a.enliven(b.register(car_factory_builder))
    car = builder.send().send([1, 2, 3, 4, 5])
    with pytest.raises(PromiseBrokenError):
        await car
    with pytest.raises(PromiseBrokenError):
        await car.send()


async def test_promise_chain_across_runtimes(make_runtime: MakeRuntime) -> None:
    a, b = await two(make_runtime)
    c = await make_runtime("carol")
    square = await b.enliven(c.register(lambda x: x * x))

    def square_plus_one(x: int) -> Promise:
        res = Promise()
        square(x).on_settle(lambda ok, v: res.resolve(v + 1) if ok else res.break_(v))
        return res

    async def via_coroutine(x: int) -> int:
        return int(await square(x)) * 10

    f = await a.enliven(b.register(square_plus_one))
    g = await a.enliven(b.register(via_coroutine))
    assert await f(7) == 50
    assert await g(3) == 90


async def test_promise_pair_and_listen(make_runtime: MakeRuntime) -> None:
    a, b = await two(make_runtime)

    def make_pair() -> list[Any]:
        from charter.ocapn.runtime.refs import Resolver

        p = Promise()
        return [p, Resolver(p)]

    pair_maker = await a.enliven(b.register(make_pair))
    promise, resolver = await pair_maker()
    assert isinstance(promise, Promise) and isinstance(resolver, RemoteRef)
    assert not promise.settled
    resolver.send_only(S("fulfill"), "done")
    assert await promise == "done"

    promise2, resolver2 = await pair_maker()
    resolver2.send_only(S("break"), "oops")
    with pytest.raises(PromiseBrokenError):
        await promise2


async def test_get_index_untag(make_runtime: MakeRuntime) -> None:
    a, b = await two(make_runtime)
    shapes = {"name": "square", "sides": [1, 2, 3, 4], "tagged": Record("point", [7, 8])}
    getter = await a.enliven(b.register(lambda: shapes))
    p = getter.send()
    assert await p.get("name") == "square"
    assert await p.get("sides").index(2) == 3
    assert await p.get("tagged").untag("point").index(1) == 8
    with pytest.raises(PromiseBrokenError):
        await p.get("nope")
    with pytest.raises(PromiseBrokenError):
        await p.get("sides").index(9)
    with pytest.raises(PromiseBrokenError):
        await p.get("tagged").untag("other")
    # once settled the accessors are applied locally
    await p
    assert await p.get("sides").index(0) == 1


async def test_passing_references_both_ways(make_runtime: MakeRuntime) -> None:
    a, b = await two(make_runtime)
    log: list[str] = []

    def notify(target: Any, text: str) -> Promise:
        return target.send(text.upper())

    notifier = await a.enliven(b.register(notify))
    assert await notifier(lambda t: log.append(t) or len(log), "hi") == 1
    assert log == ["HI"]
    # a reference a peer gave us goes back to it as itself
    ident = await a.enliven(b.register(lambda x: x))
    counter = await a.enliven(b.register(Counter()))
    assert await ident(counter) is counter


async def test_fire_and_forget(make_runtime: MakeRuntime) -> None:
    a, b = await two(make_runtime)
    counter = Counter()
    ref = await a.enliven(b.register(counter))
    for _ in range(100):
        ref.send_only(S("add"), 1)
    await eventually(lambda: counter.n == 100)


async def test_local_enliven_returns_the_object(make_runtime: MakeRuntime) -> None:
    a = await make_runtime("alice")
    obj = Counter()
    assert await a.enliven(a.register(obj).to_uri()) is obj
    gc.collect()


async def test_pipelining_to_an_imported_promise(make_runtime: MakeRuntime) -> None:
    a, b = await two(make_runtime)

    def make_pair() -> list[Any]:
        from charter.ocapn.runtime.refs import Resolver

        p = Promise()
        return [p, Resolver(p)]

    maker = await a.enliven(b.register(make_pair))
    promise, resolver = await maker()
    reply = promise.send(20)  # goes to bob at once; bob queues it on his promise
    resolver.send_only(S("fulfill"), lambda x: x + 1)  # bob's promise -> alice's object
    assert await reply == 21


async def test_fire_and_forget_to_a_coroutine_and_a_failing_object(
    make_runtime: MakeRuntime,
) -> None:
    a, b = await two(make_runtime)
    done: list[int] = []

    async def slow(x: int) -> None:
        done.append(x)

    def failing(x: int) -> None:
        raise RuntimeError("nobody is told")

    ref = await a.enliven(b.register(slow))
    bad = await a.enliven(b.register(failing))
    bad.send_only(1)
    ref.send_only(7)
    await eventually(lambda: done == [7])
    assert await ref(8) is None  # the session is still fine
    assert done == [7, 8]


async def test_listen_on_an_exported_promise_and_chained_resolution(
    make_runtime: MakeRuntime,
) -> None:
    a, b = await two(make_runtime)
    later = Promise()
    first = Promise()
    ref = await a.enliven(b.register(lambda: first))
    p = ref()
    first.resolve(later)  # a promise resolved to another promise
    assert not p.settled
    later.resolve({"ok": True})
    assert await p == {"ok": True}


async def test_promise_api_locally() -> None:
    p = Promise()
    seen: list[tuple[bool, Any]] = []
    p.on_settle(lambda ok, v: seen.append((ok, v)))
    reply = p.send(3)  # queued until p settles
    p.resolve(lambda x: x * 2)
    assert await reply == 6
    assert seen and seen[0][0] is True
    assert p.result()(5) == 10
    broken = Promise.broken("why")
    with pytest.raises(PromiseBrokenError):
        broken.result()
    with pytest.raises(PromiseBrokenError):
        await broken.send(1)
    q = Promise()
    q.resolve(q)
    assert q.is_broken
