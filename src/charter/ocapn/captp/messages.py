"""CapTP operations and descriptors as typed values, parsed strictly from Syrup records.

Two dialects share the wire. The current draft sends fire-and-forget messages as
``op:deliver`` with answer position and resolver both ``false``, a two-field
``op:listen`` and the plural ``op:gc-exports``/``op:gc-answers``. The previous
dialect, still spoken by deployed peers and test tools, has ``op:deliver-only``, a
three-field ``op:listen`` (with ``wants-partial``) and singular ``op:gc-export`` /
``op:gc-answer``. Both are accepted on input; ``to_record`` emits either.

Positions are non-negative integers (``bool`` is not an integer here). Any
deviation raises ``ProtocolError``, which the session turns into ``op:abort``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from charter.codec.syrup import Record, Symbol, encode
from charter.ocapn.captp.crypto import (
    parse_public_key,
    parse_signature,
    public_key_value,
    signature_value,
)
from charter.ocapn.captp.errors import ProtocolError
from charter.ocapn.locator import LocatorError, PeerLocation

CAPTP_VERSION = "1.0"


class Dialect(enum.Enum):
    """Which spelling of the protocol a session emits."""

    CURRENT = "current"
    LEGACY = "legacy"


def _sym(name: str) -> Symbol:
    return Symbol(name)


OP_START_SESSION = _sym("op:start-session")
OP_DELIVER = _sym("op:deliver")
OP_DELIVER_ONLY = _sym("op:deliver-only")
OP_ABORT = _sym("op:abort")
OP_LISTEN = _sym("op:listen")
OP_GET = _sym("op:get")
OP_INDEX = _sym("op:index")
OP_UNTAG = _sym("op:untag")
OP_GC_EXPORTS = _sym("op:gc-exports")
OP_GC_EXPORT = _sym("op:gc-export")
OP_GC_ANSWERS = _sym("op:gc-answers")
OP_GC_ANSWER = _sym("op:gc-answer")

DESC_IMPORT_OBJECT = _sym("desc:import-object")
DESC_IMPORT_PROMISE = _sym("desc:import-promise")
DESC_EXPORT = _sym("desc:export")
DESC_ANSWER = _sym("desc:answer")
DESC_SIG_ENVELOPE = _sym("desc:sig-envelope")
DESC_HANDOFF_GIVE = _sym("desc:handoff-give")
DESC_HANDOFF_RECEIVE = _sym("desc:handoff-receive")
DESC_ERROR = _sym("desc:error")
MY_LOCATION = _sym("my-location")


def position(value: Any, what: str = "position") -> int:
    """``value`` as a position: a non-negative integer that is not a boolean."""
    if type(value) is not int or value < 0:
        raise ProtocolError(f"{what} must be a non-negative integer, got {value!r:.40}")
    return value


# -- reference descriptors ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportObject:
    """``<desc:import-object pos>``: an object in the sender's export table."""

    position: int

    def to_record(self) -> Record:
        return Record(DESC_IMPORT_OBJECT, self.position)


@dataclass(frozen=True, slots=True)
class ImportPromise:
    """``<desc:import-promise pos>``: a promise in the sender's export table."""

    position: int

    def to_record(self) -> Record:
        return Record(DESC_IMPORT_PROMISE, self.position)


@dataclass(frozen=True, slots=True)
class Export:
    """``<desc:export pos>``: something in the receiver's export table."""

    position: int

    def to_record(self) -> Record:
        return Record(DESC_EXPORT, self.position)


@dataclass(frozen=True, slots=True)
class Answer:
    """``<desc:answer pos>``: the answer slot the sender chose in an earlier message."""

    position: int

    def to_record(self) -> Record:
        return Record(DESC_ANSWER, self.position)


Target: TypeAlias = Export | Answer

_DESC_PREFIX: dict[type, bytes] = {
    ImportObject: b"<18'desc:import-object",
    ImportPromise: b"<19'desc:import-promise",
    Export: b"<11'desc:export",
    Answer: b"<11'desc:answer",
}


def encode_desc(desc: ImportObject | ImportPromise | Export | Answer) -> bytes:
    """The canonical Syrup bytes of a position descriptor, without the generic encoder."""
    return b"%s%d+>" % (_DESC_PREFIX[type(desc)], desc.position)


ImportDesc: TypeAlias = ImportObject | ImportPromise

_REF_DESCS: dict[Symbol, type[ImportObject | ImportPromise | Export | Answer]] = {
    DESC_IMPORT_OBJECT: ImportObject,
    DESC_IMPORT_PROMISE: ImportPromise,
    DESC_EXPORT: Export,
    DESC_ANSWER: Answer,
}


def parse_ref_desc(value: Any) -> ImportObject | ImportPromise | Export | Answer:
    """One of the four position descriptors."""
    if type(value) is not Record:
        raise ProtocolError("expected a descriptor record")
    cls = _REF_DESCS.get(value.label)
    if cls is None or len(value.fields) != 1:
        raise ProtocolError(f"expected a position descriptor, got {value.label!r:.40}")
    return cls(position(value.fields[0]))


def _target(value: Any, *, allow_import_promise: bool = False) -> Target:
    desc = parse_ref_desc(value)
    if isinstance(desc, Export | Answer):
        return desc
    if allow_import_promise and isinstance(desc, ImportPromise):
        return Export(desc.position)
    raise ProtocolError("message target must be desc:export or desc:answer")


def _import_desc(value: Any) -> ImportDesc:
    desc = parse_ref_desc(value)
    if not isinstance(desc, ImportObject | ImportPromise):
        raise ProtocolError("expected desc:import-object or desc:import-promise")
    return desc


# -- signed certificates --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigEnvelope:
    """``<desc:sig-envelope signed signature>``; ``signed`` is kept as received."""

    signed: Record
    signature: bytes

    def to_record(self) -> Record:
        return Record(DESC_SIG_ENVELOPE, self.signed, signature_value(self.signature))

    @classmethod
    def parse(cls, value: Any) -> SigEnvelope:
        if type(value) is not Record or value.label != DESC_SIG_ENVELOPE or len(value.fields) != 2:
            raise ProtocolError("malformed desc:sig-envelope")
        signed, sig = value.fields
        if type(signed) is not Record:
            raise ProtocolError("desc:sig-envelope must wrap a record")
        return cls(signed, parse_signature(sig))


def gift_id(value: Any) -> int | bytes:
    """Gift IDs are non-negative integers or, as deployed peers send, bytestrings."""
    if isinstance(value, bytes):
        return value
    return position(value, "gift-id")


@dataclass(frozen=True, slots=True)
class HandoffGive:
    """The gifter's certificate naming the receiver's key and the gift at the exporter."""

    receiver_key: bytes
    exporter_location: PeerLocation
    session: bytes
    gifter_side: bytes
    gift_id: int | bytes

    def to_record(self) -> Record:
        return Record(
            DESC_HANDOFF_GIVE,
            public_key_value(self.receiver_key),
            self.exporter_location.to_record(),
            self.session,
            self.gifter_side,
            self.gift_id,
        )

    @classmethod
    def parse(cls, value: Any) -> HandoffGive:
        if type(value) is not Record or value.label != DESC_HANDOFF_GIVE or len(value.fields) != 5:
            raise ProtocolError("malformed desc:handoff-give")
        key, location, session, side, gid = value.fields
        try:
            loc = PeerLocation.from_record(location)
        except LocatorError as exc:
            raise ProtocolError(f"desc:handoff-give exporter location: {exc.message}") from exc
        if not isinstance(session, bytes) or not isinstance(side, bytes):
            raise ProtocolError("desc:handoff-give session and gifter-side must be bytes")
        return cls(parse_public_key(key), loc, session, side, gift_id(gid))


@dataclass(frozen=True, slots=True)
class HandoffReceive:
    """The receiver's certificate, signed with its key from the gifter-receiver session."""

    receiving_session: bytes
    receiving_side: bytes
    handoff_count: int
    signed_give: SigEnvelope

    def to_record(self) -> Record:
        return Record(
            DESC_HANDOFF_RECEIVE,
            self.receiving_session,
            self.receiving_side,
            self.handoff_count,
            self.signed_give.to_record(),
        )

    @classmethod
    def parse(cls, value: Any) -> HandoffReceive:
        if (
            type(value) is not Record
            or value.label != DESC_HANDOFF_RECEIVE
            or len(value.fields) != 4
        ):
            raise ProtocolError("malformed desc:handoff-receive")
        session, side, count, give = value.fields
        if not isinstance(session, bytes) or not isinstance(side, bytes):
            raise ProtocolError("desc:handoff-receive session and side must be bytes")
        return cls(session, side, position(count, "handoff-count"), SigEnvelope.parse(give))


# -- operations ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartSession:
    """``<op:start-session version key location location-sig>``."""

    version: str
    public_key: bytes
    location: PeerLocation
    location_record: Any
    signature: bytes

    def to_record(self, dialect: Dialect = Dialect.CURRENT) -> Record:
        return Record(
            OP_START_SESSION,
            self.version,
            public_key_value(self.public_key),
            self.location_record,
            signature_value(self.signature),
        )


@dataclass(frozen=True, slots=True)
class Deliver:
    """A message to a target; ``answer_pos``/``resolver`` None mean fire-and-forget."""

    to: Target
    args: list[Any]
    answer_pos: int | None = None
    resolver: ImportDesc | None = None
    #: Parsed from ``op:deliver-only`` (a previous-dialect hint).
    only: bool = False

    def encode(self, dialect: Dialect = Dialect.CURRENT) -> bytes:
        """Canonical bytes, equal to ``encode(self.to_record(dialect))`` but faster."""
        to = encode_desc(self.to)
        args = encode(self.args)
        if self.answer_pos is None and self.resolver is None:
            if dialect is Dialect.LEGACY:
                return b"<15'op:deliver-only%s%s>" % (to, args)
            return b"<10'op:deliver%s%sff>" % (to, args)
        answer = b"f" if self.answer_pos is None else b"%d+" % self.answer_pos
        resolver = b"f" if self.resolver is None else encode_desc(self.resolver)
        return b"<10'op:deliver%s%s%s%s>" % (to, args, answer, resolver)

    def to_record(self, dialect: Dialect = Dialect.CURRENT) -> Record:
        if self.answer_pos is None and self.resolver is None and dialect is Dialect.LEGACY:
            return Record(OP_DELIVER_ONLY, self.to.to_record(), self.args)
        return Record(
            OP_DELIVER,
            self.to.to_record(),
            self.args,
            False if self.answer_pos is None else self.answer_pos,
            False if self.resolver is None else self.resolver.to_record(),
        )


@dataclass(frozen=True, slots=True)
class Abort:
    """``<op:abort reason>``."""

    reason: str

    def to_record(self, dialect: Dialect = Dialect.CURRENT) -> Record:
        return Record(OP_ABORT, self.reason)


@dataclass(frozen=True, slots=True)
class Listen:
    """Ask to be told (via ``listener``) when the promise at ``to`` settles."""

    to: Target
    listener: ImportDesc
    wants_partial: bool = False
    #: Parsed from the three-field form (a previous-dialect hint).
    legacy: bool = False

    def to_record(self, dialect: Dialect = Dialect.CURRENT) -> Record:
        if dialect is Dialect.LEGACY:
            return Record(
                OP_LISTEN, self.to.to_record(), self.listener.to_record(), self.wants_partial
            )
        return Record(OP_LISTEN, self.to.to_record(), self.listener.to_record())


class SelectKind(enum.Enum):
    """The three pipelined accessors."""

    GET = "get"
    INDEX = "index"
    UNTAG = "untag"


_SELECT_LABELS = {SelectKind.GET: OP_GET, SelectKind.INDEX: OP_INDEX, SelectKind.UNTAG: OP_UNTAG}


@dataclass(frozen=True, slots=True)
class Select:
    """``op:get`` (field name), ``op:index`` (integer) or ``op:untag`` (tag string)."""

    kind: SelectKind
    receiver: Target
    key: str | int
    answer_pos: int

    def to_record(self, dialect: Dialect = Dialect.CURRENT) -> Record:
        return Record(
            _SELECT_LABELS[self.kind], self.receiver.to_record(), self.key, self.answer_pos
        )


@dataclass(frozen=True, slots=True)
class GcExports:
    """Release ``deltas[i]`` wire references to export ``positions[i]``."""

    positions: list[int]
    deltas: list[int]
    legacy: bool = False

    def to_record(self, dialect: Dialect = Dialect.CURRENT) -> Record:
        label = OP_GC_EXPORT if dialect is Dialect.LEGACY else OP_GC_EXPORTS
        return Record(label, self.positions, self.deltas)


@dataclass(frozen=True, slots=True)
class GcAnswers:
    """The sender no longer needs these answer positions."""

    positions: list[int]
    legacy: bool = False

    def to_record(self, dialect: Dialect = Dialect.CURRENT) -> Record:
        label = OP_GC_ANSWER if dialect is Dialect.LEGACY else OP_GC_ANSWERS
        return Record(label, self.positions)


Operation: TypeAlias = StartSession | Deliver | Abort | Listen | Select | GcExports | GcAnswers


def _bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise ProtocolError(f"{what} must be a boolean")
    return value


def _positions(value: Any, what: str) -> list[int]:
    if type(value) is int:  # previous dialect: one position per message
        return [position(value, what)]
    if type(value) is not list:
        raise ProtocolError(f"{what} must be a list of non-negative integers")
    return [position(v, what) for v in value]


def _parse_start_session(f: tuple[Any, ...]) -> StartSession:
    if len(f) != 4:
        raise ProtocolError("op:start-session takes four fields")
    version, key, location, sig = f
    if type(version) is not str:
        raise ProtocolError("op:start-session version must be a string")
    try:
        loc = PeerLocation.from_record(location)
    except LocatorError as exc:
        raise ProtocolError(f"op:start-session location: {exc.message}") from exc
    return StartSession(version, parse_public_key(key), loc, location, parse_signature(sig))


def _parse_deliver(f: tuple[Any, ...]) -> Deliver:
    if len(f) != 4:
        raise ProtocolError("op:deliver takes four fields")
    to, args, answer, resolver = f
    if type(args) is not list:
        raise ProtocolError("op:deliver args must be a list")
    answer_pos = None if answer is False else position(answer, "answer position")
    # An answer position without a resolver is allowed: the sender only pipelines on it.
    resolver_desc = None if resolver is False else _import_desc(resolver)
    return Deliver(_target(to), args, answer_pos, resolver_desc)


def _parse_deliver_only(f: tuple[Any, ...]) -> Deliver:
    if len(f) != 2:
        raise ProtocolError("op:deliver-only takes two fields")
    to, args = f
    if type(args) is not list:
        raise ProtocolError("op:deliver-only args must be a list")
    return Deliver(_target(to), args, None, None, only=True)


def _parse_abort(f: tuple[Any, ...]) -> Abort:
    if len(f) != 1 or type(f[0]) is not str:
        raise ProtocolError("op:abort takes one string")
    return Abort(f[0])


def _parse_listen(f: tuple[Any, ...]) -> Listen:
    if len(f) == 2:
        return Listen(_target(f[0]), _import_desc(f[1]))
    if len(f) == 3:
        return Listen(_target(f[0]), _import_desc(f[1]), _bool(f[2], "wants-partial"), legacy=True)
    raise ProtocolError("op:listen takes two or three fields")


def _parse_select(kind: SelectKind, f: tuple[Any, ...]) -> Select:
    if len(f) != 3:
        raise ProtocolError(f"op:{kind.value} takes three fields")
    receiver, key, answer = f
    if kind is SelectKind.INDEX:
        if type(key) is not int:
            raise ProtocolError("op:index index must be an integer")
    elif type(key) is not str:
        raise ProtocolError(f"op:{kind.value} key must be a string")
    return Select(
        kind,
        _target(receiver, allow_import_promise=True),
        key,
        position(answer, "answer position"),
    )


def _parse_gc_exports(f: tuple[Any, ...], legacy: bool) -> GcExports:
    if len(f) != 2:
        raise ProtocolError("op:gc-exports takes two fields")
    positions = _positions(f[0], "export position")
    deltas = _positions(f[1], "wire delta")
    if len(positions) != len(deltas):
        raise ProtocolError("op:gc-exports lists differ in length")
    return GcExports(positions, deltas, legacy)


def _parse_gc_answers(f: tuple[Any, ...], legacy: bool) -> GcAnswers:
    if len(f) != 1:
        raise ProtocolError("op:gc-answers takes one field")
    return GcAnswers(_positions(f[0], "answer position"), legacy)


_PARSERS: dict[Symbol, Callable[[tuple[Any, ...]], Operation]] = {
    OP_DELIVER: _parse_deliver,
    OP_DELIVER_ONLY: _parse_deliver_only,
    OP_LISTEN: _parse_listen,
    OP_GC_EXPORTS: lambda f: _parse_gc_exports(f, False),
    OP_GC_EXPORT: lambda f: _parse_gc_exports(f, True),
    OP_GC_ANSWERS: lambda f: _parse_gc_answers(f, False),
    OP_GC_ANSWER: lambda f: _parse_gc_answers(f, True),
    OP_GET: lambda f: _parse_select(SelectKind.GET, f),
    OP_INDEX: lambda f: _parse_select(SelectKind.INDEX, f),
    OP_UNTAG: lambda f: _parse_select(SelectKind.UNTAG, f),
    OP_ABORT: _parse_abort,
    OP_START_SESSION: _parse_start_session,
}


def parse_operation(value: Any) -> Operation:
    """The operation a received top-level value encodes; ``ProtocolError`` if none."""
    if type(value) is not Record:
        raise ProtocolError("a CapTP message must be a record")
    label = value.label
    parser = _PARSERS.get(label) if type(label) is Symbol else None
    if parser is None:
        raise ProtocolError(f"unknown operation {label!r:.60}")
    return parser(value.fields)


def dialect_hint(op: Operation) -> Dialect | None:
    """The dialect an operation reveals its sender speaks, if it reveals one."""
    if isinstance(op, Deliver):
        if op.only:
            return Dialect.LEGACY
        if op.resolver is None:  # the previous dialect never sends a false resolver
            return Dialect.CURRENT
        return None
    if isinstance(op, Listen):
        return Dialect.LEGACY if op.legacy else Dialect.CURRENT
    if isinstance(op, GcExports | GcAnswers):
        return Dialect.LEGACY if op.legacy else Dialect.CURRENT
    return None


def error_record(message: str) -> Record:
    """The break reason Charter sends for a failed delivery: ``<desc:error message>``."""
    return Record(DESC_ERROR, message)


def location_signing_bytes(location_record: Any) -> Record:
    """What ``op:start-session`` signs: ``<my-location <ocapn-peer ...>>``."""
    return Record(MY_LOCATION, location_record)
