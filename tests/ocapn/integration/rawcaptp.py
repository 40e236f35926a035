"""A deliberately independent CapTP client for tests: hand-built Syrup records on a raw socket.

It uses only the Syrup codec and the framers, never Charter's CapTP session or
runtime, so what it checks is the peer's behaviour on the wire as the specification
describes it (record layouts, descriptor perspectives, signatures, session IDs).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from charter.codec.syrup import Record, Symbol, encode
from charter.ocapn.framing import make_framer
from charter.ocapn.locator import PeerLocation

S = Symbol


def public_key_form(raw: bytes) -> list[Any]:
    return [
        S("public-key"),
        [S("ecc"), [S("curve"), S("Ed25519")], [S("flags"), S("eddsa")], [S("q"), raw]],
    ]


def signature_form(sig: bytes) -> list[Any]:
    return [S("sig-val"), [S("eddsa"), [S("r"), sig[:32]], [S("s"), sig[32:]]]]


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def side_id(raw_key: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(encode(public_key_form(raw_key))).digest()).digest()


def session_id(key_a: bytes, key_b: bytes) -> bytes:
    a, b = sorted((side_id(key_a), side_id(key_b)))
    return hashlib.sha256(hashlib.sha256(b"prot0" + a + b).digest()).digest()


def export(pos: int) -> Record:
    return Record(S("desc:export"), pos)


def answer(pos: int) -> Record:
    return Record(S("desc:answer"), pos)


def import_object(pos: int) -> Record:
    return Record(S("desc:import-object"), pos)


def deliver(to: Record, args: list[Any], answer_pos: int | bool, resolver: Record | bool) -> Record:
    return Record(S("op:deliver"), to, args, answer_pos, resolver)


def is_deliver(msg: Any) -> bool:
    return isinstance(msg, Record) and msg.label in (S("op:deliver"), S("op:deliver-only"))


@dataclass
class RawSession:
    """One CapTP session spoken by hand over a TCP (or Unix) stream."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    framing: str = "unframed"
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    location: PeerLocation = field(
        default_factory=lambda: PeerLocation(f"raw-{uuid.uuid4().hex}", "tcp-testing-only")
    )
    peer_key: bytes = b""
    peer_location: PeerLocation | None = None
    _next_import: int = 0
    _next_answer: int = 0
    _handoff_count: int = 0
    seen: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._framer = make_framer(self.framing)
        self._queue: list[Any] = []

    @property
    def public(self) -> bytes:
        return raw_public(self.key)

    @property
    def id(self) -> bytes:
        return session_id(self.public, self.peer_key)

    @property
    def our_side(self) -> bytes:
        return side_id(self.public)

    def new_import(self) -> int:
        """A position in our export table for a resolver we hand the peer."""
        pos = self._next_import
        self._next_import += 1
        return pos

    def new_answer(self) -> int:
        pos = self._next_answer
        self._next_answer += 1
        return pos

    def next_handoff_count(self) -> int:
        count = self._handoff_count
        self._handoff_count += 1
        return count

    def send(self, msg: Any) -> None:
        self.writer.write(self._framer.frame(encode(msg)))

    def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)

    async def recv(self, within: float = 10.0) -> Any:
        async with asyncio.timeout(within):
            while not self._queue:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("peer closed the connection")
                self._queue.extend(self._framer.feed(data))
        msg = self._queue.pop(0)
        self.seen.append(msg)
        return msg

    async def expect(self, match: Callable[[Any], bool], within: float = 10.0) -> Any:
        """The next message ``match`` accepts; messages before it are skipped (kept in ``seen``)."""
        async with asyncio.timeout(within):
            while True:
                msg = await self.recv(within)
                if match(msg):
                    return msg

    async def expect_to(self, export_pos: int, within: float = 10.0) -> Record:
        """The next op:deliver(-only) addressed to our export ``export_pos``."""
        msg: Record = await self.expect(
            lambda m: is_deliver(m) and m.fields[0] == export(export_pos), within
        )
        return msg

    async def resolution(self, resolver_pos: int, within: float = 10.0) -> tuple[Symbol, Any]:
        """How the peer resolved the promise whose resolver is our export ``resolver_pos``.

        A fulfilment with a promise is followed by listening to that promise.
        """
        while True:
            msg = await self.expect_to(resolver_pos, within)
            verb, *rest = msg.fields[1]
            value = rest[0] if rest else None
            if (
                verb == S("fulfill")
                and isinstance(value, Record)
                and value.label == S("desc:import-promise")
            ):
                resolver_pos = self.new_import()
                self.send(
                    Record(
                        S("op:listen"), export(value.fields[0]), import_object(resolver_pos), True
                    )
                )
                await self.writer.drain()
                continue
            return verb, value

    async def start(self, version: str = "1.0") -> Record:
        """Exchange op:start-session; the peer's location signature is checked."""
        location = self.location.to_record()
        sig = self.key.sign(encode(Record(S("my-location"), location)))
        self.send(
            Record(
                S("op:start-session"),
                version,
                public_key_form(self.public),
                location,
                signature_form(sig),
            )
        )
        await self.writer.drain()
        msg: Record = await self.recv()
        assert msg.label == S("op:start-session"), msg
        peer_version, peer_key_form, peer_location, peer_sig = msg.fields
        assert peer_version == "1.0"
        self.peer_key = peer_key_form[1][3][1]
        sig_bytes = peer_sig[1][1][1] + peer_sig[1][2][1]
        Ed25519PublicKey.from_public_bytes(self.peer_key).verify(
            sig_bytes, encode(Record(S("my-location"), peer_location))
        )
        self.peer_location = PeerLocation.from_record(peer_location)
        return msg

    async def fetch(self, swiss: bytes) -> int:
        """Fetch an object by swiss number from the bootstrap object; its import position."""
        resolver = self.new_import()
        self.send(deliver(export(0), [S("fetch"), swiss], False, import_object(resolver)))
        await self.writer.drain()
        verb, value = await self.resolution(resolver)
        assert verb == S("fulfill"), (verb, value)
        assert isinstance(value, Record) and value.label == S("desc:import-object"), value
        pos: int = value.fields[0]
        return pos

    async def call(self, to: Record, args: list[Any]) -> tuple[Symbol, Any]:
        resolver = self.new_import()
        self.send(deliver(to, args, False, import_object(resolver)))
        await self.writer.drain()
        return await self.resolution(resolver)

    async def close(self) -> None:
        try:
            self.send(Record(S("op:abort"), "done"))
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        self.writer.close()
        try:
            async with asyncio.timeout(5):
                await self.writer.wait_closed()
        except (ConnectionError, TimeoutError):
            pass


async def open_raw_session(
    host: str, port: int, *, framing: str = "unframed", start: bool = True
) -> RawSession:
    reader, writer = await asyncio.open_connection(host, port)
    session = RawSession(reader, writer, framing)
    if start:
        await session.start()
    return session


def signed_handoff_give(
    gifter_key: Ed25519PrivateKey,
    receiver_key: bytes,
    exporter_location: PeerLocation,
    gifter_exporter_session: bytes,
    gifter_side: bytes,
    gift_id: bytes,
) -> Record:
    give = Record(
        S("desc:handoff-give"),
        public_key_form(receiver_key),
        exporter_location.to_record(),
        gifter_exporter_session,
        gifter_side,
        gift_id,
    )
    return Record(S("desc:sig-envelope"), give, signature_form(gifter_key.sign(encode(give))))


def signed_handoff_receive(
    receiver_key: Ed25519PrivateKey,
    receiving_session: bytes,
    receiving_side: bytes,
    handoff_count: int,
    signed_give: Record,
) -> Record:
    receive = Record(
        S("desc:handoff-receive"), receiving_session, receiving_side, handoff_count, signed_give
    )
    return Record(
        S("desc:sig-envelope"), receive, signature_form(receiver_key.sign(encode(receive)))
    )
