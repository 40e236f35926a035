"""Model, batch and pin-command encodings: canonical, strict, signed over exact bytes."""

from __future__ import annotations

import pytest

from charter.codec.syrup import encode
from charter.crypto.keys import Ed25519PrivateKey
from charter.ledger.engine import CommandRefused
from charter.multiparty.batch import Batch, SignedBatch, seal
from charter.multiparty.errors import InvalidMessage, MalformedBatch, MalformedPins
from charter.multiparty.model import DataItem, Group, Message, canonical_json, context_of, pin_of
from charter.multiparty.pins import Clock, MpHandler, PinCommand, parse_body


def _msg(nonce: int = 0, topic: str = "t", node: str = "node-a", blob: bytes = b"") -> Message:
    items = [DataItem("d1", canonical_json({"b": 1, "a": [1.5, None, "x"]}))]
    if blob:
        items.append(DataItem("d2", None, blob_hash=blob, blob_size=10, blob_name="f.bin"))
    return Message(
        f"m{nonce}{topic}",
        "private",
        "member-a",
        node,
        topic,
        "tag",
        "",
        Group.of(["member-b", "member-a"]),
        nonce,
        123,
        tuple(items),
    )


def test_group_sorted_and_hash_is_order_free() -> None:
    g1 = Group.of(["b", "a", "b"])
    assert g1.members == ("a", "b")
    assert g1.hash == Group.of(["a", "b"]).hash != Group.of(["a", "c"]).hash
    with pytest.raises(InvalidMessage):
        Group.of([])
    with pytest.raises(InvalidMessage):
        Group(("b", "a"))


def test_context_and_pin_separate_every_field() -> None:
    g = Group.of(["a", "b"]).hash
    c = context_of("t", g)
    assert c != context_of("u", g) != context_of("t", Group.of(["a"]).hash)
    assert pin_of(c, "n", 0) != pin_of(c, "n", 1) != pin_of(c, "m", 0)


def test_canonical_json_is_unique() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    with pytest.raises(InvalidMessage):
        canonical_json(float("nan"))


def test_batch_round_trip_and_signature() -> None:
    key = Ed25519PrivateKey.generate()
    m0, m1 = _msg(0), _msg(1, blob=b"\x01" * 32)
    batch = Batch("b1", "private", "member-a", "node-a", m0.group, 5, (m0, m1))
    signed = seal(batch, key)
    back = SignedBatch.decode(signed.raw)
    back.verify(key.public_key)
    assert back.batch == batch and back.hash == signed.hash
    assert back.batch.pins == [m0.pin, m1.pin]
    assert back.batch.messages[1].blobs == (b"\x01" * 32,)
    assert back.batch.messages[0].data[0].json_value() == {"a": [1.5, None, "x"], "b": 1}
    with pytest.raises(MalformedBatch):
        back.verify(Ed25519PrivateKey.generate().public_key)
    tampered = bytearray(signed.raw)
    tampered[-70] ^= 1
    with pytest.raises(MalformedBatch):
        b2 = SignedBatch.decode(bytes(tampered))
        b2.verify(key.public_key)


def test_batch_refuses_mixed_authors_groups_and_duplicate_pins() -> None:
    m0 = _msg(0)
    with pytest.raises(MalformedBatch):
        Batch("b", "private", "member-a", "node-a", m0.group, 0, (m0, _msg(1, node="node-x")))
    with pytest.raises(MalformedBatch):
        Batch("b", "private", "member-a", "node-a", m0.group, 0, (m0, m0))
    with pytest.raises(MalformedBatch):
        Batch("b", "broadcast", "member-a", "node-a", m0.group, 0, (m0,))
    with pytest.raises(MalformedBatch):
        SignedBatch.decode(b"not syrup")
    with pytest.raises(MalformedBatch):
        SignedBatch.decode(encode([1, 2]))


def test_pin_command_shape() -> None:
    cmd = PinCommand(b"\x02" * 32, (b"\x03" * 32, b"\x04" * 32), 17)
    assert parse_body(cmd.encode()) == cmd
    assert parse_body(Clock(5).encode()) == Clock(5)
    for bad in (
        b"junk",
        PinCommand(b"\x02" * 32, (b"\x03" * 32,), -1).encode(),
        Clock(-3).encode(),
        PinCommand(b"\x02" * 31, (b"\x03" * 32,), 1).encode(),
        PinCommand(b"\x02" * 32, (), 1).encode(),
        PinCommand(b"\x02" * 32, (b"\x03" * 32, b"\x03" * 32), 1).encode(),
        PinCommand(b"\x02" * 32, (b"\x03" * 3,), 1).encode(),
    ):
        with pytest.raises(MalformedPins):
            parse_body(bad)
        with pytest.raises(CommandRefused):
            MpHandler().execute(None, bad)  # type: ignore[arg-type]
    assert MpHandler().execute(None, cmd.encode()) == []  # type: ignore[arg-type]


def test_a_batch_pinned_by_a_token_operation_says_so_and_holds_one_message() -> None:
    from charter.codec.syrup import Record, Symbol, decode

    key = Ed25519PrivateKey.generate()
    group = Group.of(["member-b", "member-a"])
    plain = Batch("b1", "private", "member-a", "node-a", group, 5, (_msg(0),))
    bound = Batch("b1", "private", "member-a", "node-a", group, 5, (_msg(0),), "tokens")
    assert len(decode(plain.body()).fields) == 7  # ordinary batches keep their bytes
    assert decode(bound.body()).fields[7] == Symbol("tokens")
    signed = SignedBatch.decode(seal(bound, key).raw)
    signed.verify(key.public_key)
    assert signed.batch.pinned_by == "tokens" and signed.batch == bound
    assert signed.hash != seal(plain, key).hash
    with pytest.raises(MalformedBatch):
        Batch("b2", "private", "member-a", "node-a", group, 5, (_msg(0), _msg(1)), "tokens")
    with pytest.raises(MalformedBatch):
        Batch("b3", "private", "member-a", "node-a", group, 5, (_msg(0),), "gov")
    fields = list(decode(plain.body()).fields)
    for app in (Symbol("mp"), "tokens"):  # "mp" is never spelled out; the app is a Symbol
        with pytest.raises(MalformedBatch):
            Batch.from_body(encode(Record(decode(plain.body()).label, *fields, app)))
