"""A raw-socket client speaks CapTP bytes to the test peer in another process."""

from __future__ import annotations

import random
import signal

import pytest
from rawcaptp import (
    S,
    answer,
    deliver,
    export,
    import_object,
    open_raw_session,
)

from charter.codec.syrup import Record, encode
from charter.ocapn.testpeer import (
    CAR_FACTORY_BUILDER_SWISS,
    ECHO_SWISS,
    GREETER_SWISS,
    PROMISE_PAIR_SWISS,
)


@pytest.mark.parametrize("framing", ["unframed", "length-prefixed"])
async def test_car_factory_over_raw_captp(peers, framing: str) -> None:  # type: ignore[no-untyped-def]
    peer = await peers("--listen", "127.0.0.1:0", "--framing", framing, cli=framing == "unframed")
    loc = peer.location
    assert loc.transport == "tcp-testing-only" and loc.hints_dict()["host"] == "127.0.0.1"
    raw = await open_raw_session("127.0.0.1", int(loc.hints_dict()["port"]), framing=framing)
    assert raw.peer_location is not None and raw.peer_location.same_peer(loc)
    builder = await raw.fetch(CAR_FACTORY_BUILDER_SWISS)
    verb, factory = await raw.call(export(builder), [])
    assert verb == S("fulfill") and factory.label == S("desc:import-object")
    verb, car = await raw.call(export(factory.fields[0]), [[S("red"), S("zoomracer")]])
    assert verb == S("fulfill")
    verb, text = await raw.call(export(car.fields[0]), [])
    assert (verb, text) == (S("fulfill"), "Vroom! I am a red zoomracer car!")
    # SIGINT (like SIGTERM, which the fixture sends to the others) ends the peer
    # cleanly, with a live session open
    assert await peer.stop(signal.SIGINT) == 0
    with pytest.raises(ConnectionError):
        while True:
            await raw.recv()


async def test_pipelined_car_and_broken_pipeline(peers) -> None:  # type: ignore[no-untyped-def]
    peer = await peers()
    port = int(peer.location.hints_dict()["port"])
    raw = await open_raw_session("127.0.0.1", port)
    # fetch, build a factory, build a car and drive it, all before any answer arrives
    fetched, factory, car = raw.new_answer(), raw.new_answer(), raw.new_answer()
    raw.send(
        deliver(
            export(0),
            [S("fetch"), CAR_FACTORY_BUILDER_SWISS],
            fetched,
            import_object(raw.new_import()),
        )
    )
    raw.send(deliver(answer(fetched), [], factory, import_object(raw.new_import())))
    raw.send(
        deliver(answer(factory), [[S("red"), S("zoomracer")]], car, import_object(raw.new_import()))
    )
    drive = raw.new_import()
    raw.send(deliver(answer(car), [], False, import_object(drive)))
    await raw.writer.drain()
    assert await raw.resolution(drive) == (S("fulfill"), "Vroom! I am a red zoomracer car!")
    # the same chain with a malformed car specification breaks every later promise
    factory2, car2 = raw.new_answer(), raw.new_answer()
    raw.send(deliver(answer(fetched), [], factory2, import_object(raw.new_import())))
    raw.send(deliver(answer(factory2), [[1, 2, 3, 4, 5]], car2, import_object(raw.new_import())))
    drive2 = raw.new_import()
    raw.send(deliver(answer(car2), [], False, import_object(drive2)))
    await raw.writer.drain()
    verb, _reason = await raw.resolution(drive2)
    assert verb == S("break")
    await raw.close()


async def test_echo_greeter_and_promise_pair(peers) -> None:  # type: ignore[no-untyped-def]
    peer = await peers()
    raw = await open_raw_session("127.0.0.1", int(peer.location.hints_dict()["port"]))
    echo = await raw.fetch(ECHO_SWISS)
    args = ["foo", 1, False, b"bar", ["baz"]]
    assert await raw.call(export(echo), args) == (S("fulfill"), args)

    # echo keeps no reference to an object we pass: the peer releases it (gc-export(s))
    ours = raw.new_import()
    raw.send(Record(S("op:deliver-only"), export(echo), [import_object(ours)] * 3))
    released = 0

    def is_gc(m: object) -> bool:
        return isinstance(m, Record) and m.label in (S("op:gc-export"), S("op:gc-exports"))

    while released < 3:
        gc = await raw.expect(is_gc)
        for pos, delta in zip(*gc.fields, strict=True):
            if pos == ours:
                released += delta
    assert released == 3

    # greeter: op:deliver "Hello" with an answer and a resolver; gc-answer after we fulfil
    greeter = await raw.fetch(GREETER_SWISS)
    greeted = raw.new_import()
    raw.send(deliver(export(greeter), [import_object(greeted)], False, False))
    await raw.writer.drain()
    hello = await raw.expect_to(greeted)
    assert hello.label == S("op:deliver") and hello.fields[1] == ["Hello"]
    answer_pos, resolver = hello.fields[2], hello.fields[3]
    assert type(answer_pos) is int and resolver.label == S("desc:import-object")
    raw.send(deliver(export(resolver.fields[0]), [S("fulfill"), "Hi"], False, False))
    await raw.writer.drain()
    gc_answer = await raw.expect(
        lambda m: (
            isinstance(m, Record)
            and m.label in (S("op:gc-answer"), S("op:gc-answers"))
            and answer_pos in (m.fields[0] if isinstance(m.fields[0], list) else [m.fields[0]])
        )
    )
    assert gc_answer is not None

    # promise pair: [promise, resolver]; resolving through the resolver settles the promise
    pair = await raw.fetch(PROMISE_PAIR_SWISS)
    verb, value = await raw.call(export(pair), [])
    assert verb == S("fulfill")
    promise, resolver_obj = value
    assert promise.label == S("desc:import-promise")
    assert resolver_obj.label == S("desc:import-object")
    listener = raw.new_import()
    raw.send(Record(S("op:listen"), export(promise.fields[0]), import_object(listener), False))
    raw.send(deliver(export(resolver_obj.fields[0]), [S("fulfill"), "done"], False, False))
    await raw.writer.drain()
    assert await raw.resolution(listener) == (S("fulfill"), "done")

    # a broken promise reports the very reason given to the resolver
    _, (promise2, resolver2) = await raw.call(export(pair), [])
    listener2 = raw.new_import()
    raw.send(Record(S("op:listen"), export(promise2.fields[0]), import_object(listener2), False))
    raw.send(deliver(export(resolver2.fields[0]), [S("break"), S("oh-no")], False, False))
    await raw.writer.drain()
    assert await raw.resolution(listener2) == (S("break"), S("oh-no"))

    # listening to a promise resolved earlier answers at once
    _, (promise3, resolver3) = await raw.call(export(pair), [])
    raw.send(deliver(export(resolver3.fields[0]), [S("fulfill"), S("ok")], False, False))
    listener3 = raw.new_import()
    raw.send(Record(S("op:listen"), export(promise3.fields[0]), import_object(listener3), False))
    await raw.writer.drain()
    assert await raw.resolution(listener3) == (S("fulfill"), S("ok"))
    await raw.close()


async def test_garbage_gets_an_abort_and_the_peer_survives(peers) -> None:  # type: ignore[no-untyped-def]
    peer = await peers()
    port = int(peer.location.hints_dict()["port"])
    raw = await open_raw_session("127.0.0.1", port)
    raw.send_bytes(b"]]]not syrup at all")
    await raw.writer.drain()
    aborted = await raw.expect(lambda m: isinstance(m, Record) and m.label == S("op:abort"))
    assert isinstance(aborted.fields[0], str)
    # a bad version at start-session is refused too
    bad = await open_raw_session("127.0.0.1", port, start=False)
    bad.send(Record(S("op:start-session"), "0.1", [], False, []))
    await bad.writer.drain()
    # whatever came first, an abort follows and the connection ends
    await bad.expect(lambda m: isinstance(m, Record) and m.label == S("op:abort"))
    # the peer still serves new sessions
    good = await open_raw_session("127.0.0.1", port)
    echo = await good.fetch(ECHO_SWISS)
    assert await good.call(export(echo), [1]) == (S("fulfill"), [1])
    await good.close()


async def test_hostile_bytes_end_the_session_never_the_peer(peers) -> None:  # type: ignore[no-untyped-def]
    peer = await peers()
    port = int(peer.location.hints_dict()["port"])
    rng = random.Random(20261122)
    valid = encode(deliver(export(0), [S("fetch"), ECHO_SWISS], 0, import_object(0)))
    cases = [
        valid[: len(valid) // 2],  # truncated
        b"[" * 5000,  # deep nesting
        b"99999999999999:",  # absurd length
        b"<10'op:deliver>",  # wrong arity
        encode(Record(S("op:deliver"), export(999), [], False, False)),  # unknown export
        encode(Record(S("op:gc-answers"), [12345])),  # unknown answer
        encode(Record(S("op:listen"), answer(77), import_object(0), False)),
    ]
    for _ in range(12):
        mutated = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        cases.append(bytes(mutated))
    cases.extend(rng.randbytes(rng.randint(1, 64)) for _ in range(6))
    for case in cases:
        raw = await open_raw_session("127.0.0.1", port)
        raw.send_bytes(case)
        raw.writer.write_eof()
        # the peer may answer, abort or just close, but the connection always ends
        with pytest.raises(ConnectionError):
            while True:
                await raw.recv(within=10)
        raw.writer.close()
    good = await open_raw_session("127.0.0.1", port)
    echo = await good.fetch(ECHO_SWISS)
    assert await good.call(export(echo), ["still here"]) == (S("fulfill"), ["still here"])
    await good.close()


async def test_index_and_get_pipelined_on_answers(peers) -> None:  # type: ignore[no-untyped-def]
    peer = await peers()
    raw = await open_raw_session("127.0.0.1", int(peer.location.hints_dict()["port"]))
    echo = await raw.fetch(ECHO_SWISS)
    # echo's answer is the list of its arguments; op:index picks one, op:get a field of
    # a struct (string keys, as the conformance suite sends them); all pipelined
    echoed = raw.new_answer()
    raw.send(
        deliver(
            export(echo),
            [S("foo"), {"foo": 72, "bar": "baz"}],
            echoed,
            import_object(raw.new_import()),
        )
    )
    second, field = raw.new_answer(), raw.new_answer()
    raw.send(Record(S("op:index"), answer(echoed), 1, second))
    raw.send(Record(S("op:get"), answer(second), "foo", field))
    first = raw.new_answer()
    raw.send(Record(S("op:index"), answer(echoed), 0, first))
    listen_field, listen_first = raw.new_import(), raw.new_import()
    raw.send(Record(S("op:listen"), answer(field), import_object(listen_field), False))
    raw.send(Record(S("op:listen"), answer(first), import_object(listen_first), False))
    await raw.writer.drain()
    assert await raw.resolution(listen_field) == (S("fulfill"), 72)
    assert await raw.resolution(listen_first) == (S("fulfill"), S("foo"))
    # out of range breaks the answer
    bad = raw.new_answer()
    raw.send(Record(S("op:index"), answer(echoed), 9, bad))
    listen_bad = raw.new_import()
    raw.send(Record(S("op:listen"), answer(bad), import_object(listen_bad), False))
    await raw.writer.drain()
    verb, _ = await raw.resolution(listen_bad)
    assert verb == S("break")
    await raw.close()
