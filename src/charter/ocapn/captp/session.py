"""The sans-I/O CapTP session: handshake, tables, dispatch and message construction.

A ``Session`` is one side of one CapTP session. It is fed decoded Syrup values
(``receive``) and returns events for the runtime; the runtime calls ``deliver``,
``listen``, ``select``, ``release_*`` and ``abort`` and collects the encoded messages
with ``take_outgoing``. No sockets, clocks or tasks live here.

References cross the boundary through ``SessionHooks``: the session translates
descriptors in received values into the runtime's objects (``import_object``,
``import_promise``, our own exports and answers) and asks the runtime how to send a
non-data value (``describe``). It owns the export table (with wire reference
counts, released by ``op:gc-exports``), the answer table (released by
``op:gc-answers``) and the answer positions it hands out for its own questions.

Invariants enforced here: nothing but ``op:start-session`` (or ``op:abort``) before
the handshake; the peer's location signature must verify; every position the peer
names must exist; malformed input aborts the session and never raises; after an
``op:abort`` in either direction the session refuses all input and output.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from charter.codec.syrup import Record, Symbol, SyrupError, encode
from charter.ocapn.captp import crypto
from charter.ocapn.captp.errors import (
    CapTPError,
    HandshakeError,
    NotPassableError,
    ProtocolError,
    SessionAbortedError,
)
from charter.ocapn.captp.messages import (
    CAPTP_VERSION,
    DESC_ANSWER,
    DESC_EXPORT,
    DESC_HANDOFF_GIVE,
    DESC_IMPORT_OBJECT,
    DESC_IMPORT_PROMISE,
    DESC_SIG_ENVELOPE,
    Abort,
    Deliver,
    Dialect,
    Export,
    GcAnswers,
    GcExports,
    ImportObject,
    ImportPromise,
    Listen,
    Operation,
    Select,
    SelectKind,
    SigEnvelope,
    StartSession,
    Target,
    dialect_hint,
    location_signing_bytes,
    parse_operation,
    position,
)
from charter.ocapn.locator import PeerLocation

#: Nesting deeper than this in a received value is treated as hostile.
MAX_DEPTH = 200

#: Answers a peer may keep open at once before we call it hostile.
MAX_ANSWERS = 1_000_000

_ATOMS: frozenset[type] = frozenset({int, str, bytes, bool, float, Symbol})

#: Syrup has no "undefined": Python's None travels as ``<void>`` (as deployed peers do).
VOID = Record(Symbol("void"))
_VOID_LABEL = Symbol("void")


# -- how the runtime describes outgoing references ------------------------------------


@dataclass(frozen=True, slots=True)
class ExportObject:
    """Send a local object: exported as ``desc:import-object``."""

    handle: Any


@dataclass(frozen=True, slots=True)
class ExportPromise:
    """Send a local promise: exported as ``desc:import-promise``."""

    handle: Any


@dataclass(frozen=True, slots=True)
class ToImport:
    """Send back something imported from this very peer: ``desc:export``."""

    position: int


@dataclass(frozen=True, slots=True)
class ToAnswer:
    """Refer to one of our unresolved questions on this peer: ``desc:answer``."""

    position: int


@dataclass(frozen=True, slots=True)
class Raw:
    """Embed a ready-made record (e.g. a signed handoff certificate)."""

    record: Record


Outgoing: TypeAlias = ExportObject | ExportPromise | ToImport | ToAnswer | Raw


class SessionHooks(Protocol):
    """What the session needs from the runtime to translate references."""

    def import_object(self, position: int) -> Any:
        """The runtime's reference for the peer's export ``position`` (received once more)."""

    def import_promise(self, position: int) -> Any:
        """The runtime's promise for the peer's exported promise ``position``."""

    def new_answer(self, position: int) -> Any:
        """A fresh local promise the peer will address as ``desc:answer position``."""

    def handoff_give(self, envelope: SigEnvelope) -> Any:
        """A value standing for a third-party reference (a signed handoff-give)."""

    def describe(self, value: Any) -> Outgoing | None:
        """How to send ``value``, or None when it cannot be passed."""


# -- events for the runtime -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Established:
    """Both ``op:start-session`` messages were exchanged and verified."""

    peer_location: PeerLocation
    peer_key: bytes


@dataclass(frozen=True, slots=True)
class Delivered:
    """Invoke ``target`` with ``args``; settle ``answer`` and tell ``resolver`` the result."""

    target: Any
    args: list[Any]
    answer: Any | None
    resolver: Any | None


@dataclass(frozen=True, slots=True)
class ListenRequested:
    """Tell ``listener`` (``fulfill``/``break``) when ``target`` settles."""

    target: Any
    listener: Any
    wants_partial: bool


@dataclass(frozen=True, slots=True)
class Selected:
    """Settle ``answer`` with a field, element or untagged value of ``target``."""

    kind: SelectKind
    target: Any
    key: str | int
    answer: Any


@dataclass(frozen=True, slots=True)
class ExportsReleased:
    """The peer dropped its last wire reference to these local objects."""

    handles: list[Any]


@dataclass(frozen=True, slots=True)
class AnswersReleased:
    """The peer no longer needs these answers."""

    handles: list[Any]


@dataclass(frozen=True, slots=True)
class Aborted:
    """The session ended (``by_peer``: the peer sent ``op:abort``)."""

    reason: str
    by_peer: bool


Event: TypeAlias = (
    Established
    | Delivered
    | ListenRequested
    | Selected
    | ExportsReleased
    | AnswersReleased
    | Aborted
)


class State(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    ABORTED = "aborted"


class _Export:
    __slots__ = ("count", "handle", "promise")

    def __init__(self, handle: Any, promise: bool) -> None:
        self.handle = handle
        self.promise = promise
        self.count = 0


class Session:
    """One side of a CapTP session (see the module docstring)."""

    def __init__(
        self,
        location: PeerLocation,
        hooks: SessionHooks,
        bootstrap: Any,
        *,
        key: crypto.SessionKey | None = None,
        dialect: Dialect | None = None,
        initial_dialect: Dialect = Dialect.LEGACY,
    ) -> None:
        self.location = location
        self.hooks = hooks
        self.bootstrap = bootstrap
        self.key = key if key is not None else crypto.SessionKey()
        self._dialect = dialect if dialect is not None else initial_dialect
        self._dialect_fixed = dialect is not None
        self.state = State.HANDSHAKE
        self.abort_reason: str | None = None
        self.peer_key: bytes | None = None
        self.peer_location: PeerLocation | None = None
        self._started = False
        self._out: list[bytes] = []
        self._exports: dict[int, _Export] = {}
        self._export_ids: dict[int, int] = {}
        self._next_export = 1
        self._answers: dict[int, Any] = {}
        self._next_question = 0
        self._gc_exports: dict[int, int] = {}
        self._gc_answers: list[int] = []
        self._next_gift_id = 0
        self._next_handoff_count = 0
        self._seen_handoff_counts: set[int] = set()
        self._session_id: bytes | None = None
        self.messages_in = 0
        self.messages_out = 0

    # -- identity ---------------------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def is_open(self) -> bool:
        return self.state is State.OPEN

    @property
    def aborted(self) -> bool:
        return self.state is State.ABORTED

    @property
    def session_id(self) -> bytes:
        if self._session_id is None:
            if self.peer_key is None:
                raise SessionAbortedError("session is not established")
            self._session_id = crypto.session_id(self.key.public, self.peer_key)
        return self._session_id

    @property
    def local_public_id(self) -> bytes:
        return self.key.public_id

    @property
    def peer_public_id(self) -> bytes:
        if self.peer_key is None:
            raise SessionAbortedError("session is not established")
        return crypto.public_id(self.peer_key)

    def next_gift_id(self) -> int:
        gid = self._next_gift_id
        self._next_gift_id += 1
        return gid

    def next_handoff_count(self) -> int:
        count = self._next_handoff_count
        self._next_handoff_count += 1
        return count

    def claim_handoff_count(self, count: int) -> bool:
        """Record a handoff-count the peer used; False when it was used before (a replay)."""
        if count in self._seen_handoff_counts:
            return False
        self._seen_handoff_counts.add(count)
        return True

    @property
    def export_count(self) -> int:
        """Live entries in the export table (the bootstrap object not included)."""
        return len(self._exports)

    @property
    def answer_count(self) -> int:
        return len(self._answers)

    def export_refcount(self, handle: Any) -> int:
        pos = self._export_ids.get(id(handle))
        return 0 if pos is None else self._exports[pos].count

    # -- output -----------------------------------------------------------------------

    def start(self) -> None:
        """Queue our ``op:start-session`` (once)."""
        if self._started:
            return
        self._started = True
        loc = self.location.to_record()
        sig = self.key.sign(encode(location_signing_bytes(loc)))
        self._emit(StartSession(CAPTP_VERSION, self.key.public, self.location, loc, sig))

    def take_outgoing(self) -> list[bytes]:
        """Encoded messages queued since the last call (pending GC messages included)."""
        if self.state is State.OPEN:
            self._flush_gc()
        out = self._out
        self._out = []
        return out

    @property
    def has_outgoing(self) -> bool:
        return bool(self._out or self._gc_exports or self._gc_answers)

    def _emit(self, op: Operation) -> None:
        if type(op) is Deliver:
            self._out.append(op.encode(self._dialect))
        else:
            self._out.append(encode(op.to_record(self._dialect)))
        self.messages_out += 1

    def _check_open(self) -> None:
        if self.state is not State.OPEN:
            if self.state is State.ABORTED:
                raise SessionAbortedError(f"session aborted: {self.abort_reason}")
            raise SessionAbortedError("session is not established yet")

    def deliver(
        self,
        to: Target,
        args: Sequence[Any],
        *,
        answer: bool = False,
        resolver: Any | None = None,
    ) -> int | None:
        """Send ``args`` to ``to``; returns the answer position when ``answer`` is set."""
        self._check_open()
        wire_args = self._out_list(args)
        pos: int | None = None
        if answer:
            pos = self._next_question
            self._next_question += 1
        res = None if resolver is None else ImportObject(self._export(resolver, False))
        self._emit(Deliver(to, wire_args, pos, res))
        return pos

    def listen(self, to: Target, listener: Any, wants_partial: bool = False) -> None:
        """Ask the peer to tell ``listener`` when the promise at ``to`` settles."""
        self._check_open()
        self._emit(Listen(to, ImportObject(self._export(listener, False)), wants_partial))

    def select(self, kind: SelectKind, receiver: Target, key: str | int) -> int:
        """Pipelined ``op:get``/``op:index``/``op:untag``; returns the new answer position."""
        self._check_open()
        pos = self._next_question
        self._next_question += 1
        self._emit(Select(kind, receiver, key, pos))
        return pos

    def release_import(self, pos: int, delta: int) -> None:
        """We dropped ``delta`` receptions of the peer's export ``pos`` (sent batched)."""
        if self.state is State.ABORTED or pos == 0 or delta <= 0:
            return
        self._gc_exports[pos] = self._gc_exports.get(pos, 0) + delta

    def release_answer(self, pos: int) -> None:
        """We no longer need our question at ``pos`` (sent batched)."""
        if self.state is not State.ABORTED:
            self._gc_answers.append(pos)

    def _flush_gc(self) -> None:
        if self._gc_exports:
            gc = self._gc_exports
            self._gc_exports = {}
            self._emit(GcExports(list(gc), list(gc.values())))
        if self._gc_answers:
            answers = self._gc_answers
            self._gc_answers = []
            self._emit(GcAnswers(answers))

    def abort(self, reason: str) -> None:
        """Send ``op:abort`` and stop; later calls are no-ops."""
        if self.state is State.ABORTED:
            return
        self._out.clear()
        self._emit(Abort(reason))
        self._end(reason)

    def _end(self, reason: str) -> None:
        self.state = State.ABORTED
        self.abort_reason = reason
        self._gc_exports.clear()
        self._gc_answers.clear()
        self._exports.clear()
        self._export_ids.clear()
        self._answers.clear()

    # -- export table -----------------------------------------------------------------

    def _export(self, handle: Any, promise: bool) -> int:
        if handle is self.bootstrap:
            return 0
        pos = self._export_ids.get(id(handle))
        if pos is None:
            pos = self._next_export
            self._next_export += 1
            entry = _Export(handle, promise)
            self._exports[pos] = entry
            self._export_ids[id(handle)] = pos
        else:
            entry = self._exports[pos]
        entry.count += 1
        return pos

    # -- value translation ------------------------------------------------------------

    def _out_list(self, args: Sequence[Any]) -> list[Any]:
        atoms = _ATOMS
        for a in args:
            if type(a) not in atoms:
                return [self._out_value(a) for a in args]
        return list(args)

    def _out_value(self, v: Any) -> Any:
        t = type(v)
        if t in _ATOMS:
            return v
        if v is None:
            return VOID
        if t is list or t is tuple:
            return [self._out_value(x) for x in v]
        if t is dict:
            return {self._out_value(k): self._out_value(x) for k, x in v.items()}
        if t is frozenset or t is set:
            return frozenset(self._out_value(x) for x in v)
        if t is Record:
            return Record(self._out_value(v.label), *[self._out_value(x) for x in v.fields])
        if t is SigEnvelope:
            return v.to_record()
        desc = self.hooks.describe(v)
        if desc is None:
            raise NotPassableError(f"cannot pass a {t.__name__} over CapTP")
        if isinstance(desc, ExportObject):
            return Record(DESC_IMPORT_OBJECT, self._export(desc.handle, False))
        if isinstance(desc, ExportPromise):
            return Record(DESC_IMPORT_PROMISE, self._export(desc.handle, True))
        if isinstance(desc, ToImport):
            return Record(DESC_EXPORT, desc.position)
        if isinstance(desc, ToAnswer):
            return Record(DESC_ANSWER, desc.position)
        return desc.record

    def _in_list(self, args: list[Any]) -> list[Any]:
        atoms = _ATOMS
        for a in args:
            if type(a) not in atoms:
                return [self._in_value(a, 1) for a in args]
        return args

    def _in_value(self, v: Any, depth: int) -> Any:
        t = type(v)
        if t in _ATOMS:
            return v
        if depth > MAX_DEPTH:
            raise ProtocolError("value nested too deeply")
        d = depth + 1
        if t is list:
            return [self._in_value(x, d) for x in v]
        if t is Record:
            label = v.label
            if type(label) is Symbol:
                if label.name.startswith("desc:"):
                    return self._in_desc(v)
                if label == _VOID_LABEL and not v.fields:
                    return None
            return Record(self._in_value(label, d), *[self._in_value(x, d) for x in v.fields])
        if t is dict:
            return {self._in_value(k, d): self._in_value(x, d) for k, x in v.items()}
        if t is frozenset:
            return frozenset(self._in_value(x, d) for x in v)
        return v

    def _in_desc(self, v: Record) -> Any:
        label = v.label
        if label == DESC_IMPORT_OBJECT:
            return self.hooks.import_object(_single_position(v))
        if label == DESC_IMPORT_PROMISE:
            return self.hooks.import_promise(_single_position(v))
        if label == DESC_EXPORT:
            return self._lookup_export(_single_position(v))
        if label == DESC_ANSWER:
            return self._lookup_answer(_single_position(v))
        if label == DESC_SIG_ENVELOPE:
            env = SigEnvelope.parse(v)
            if env.signed.label == DESC_HANDOFF_GIVE:
                return self.hooks.handoff_give(env)
            return env
        return v  # other descriptors (desc:error, ...) are plain data

    def _lookup_export(self, pos: int) -> Any:
        if pos == 0:
            return self.bootstrap
        entry = self._exports.get(pos)
        if entry is None:
            raise ProtocolError(f"no export at position {pos}")
        return entry.handle

    def _lookup_answer(self, pos: int) -> Any:
        try:
            return self._answers[pos]
        except KeyError:
            raise ProtocolError(f"no answer at position {pos}") from None

    def _target(self, to: Target) -> Any:
        if type(to) is Export:
            return self._lookup_export(to.position)
        return self._lookup_answer(to.position)

    def _new_answer(self, pos: int) -> Any:
        if pos in self._answers:
            raise ProtocolError(f"answer position {pos} is already in use")
        if len(self._answers) >= MAX_ANSWERS:
            raise ProtocolError("too many open answers")
        handle = self.hooks.new_answer(pos)
        self._answers[pos] = handle
        return handle

    def _import(self, desc: ImportObject | ImportPromise) -> Any:
        if type(desc) is ImportObject:
            return self.hooks.import_object(desc.position)
        return self.hooks.import_promise(desc.position)

    # -- input ------------------------------------------------------------------------

    def receive(self, value: Any) -> list[Event]:
        """Process one received message; malformed input aborts and never raises."""
        if self.state is State.ABORTED:
            return []
        self.messages_in += 1
        try:
            op = parse_operation(value)
            if not self._dialect_fixed:
                hint = dialect_hint(op)
                if hint is not None:
                    self._dialect = hint
            return self._dispatch(op)
        except (CapTPError, SyrupError) as exc:
            reason = exc.message
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            reason = f"malformed message: {exc!r:.200}"
        except RecursionError:
            reason = "value nested too deeply"
        return [self.fail(reason)]

    def fail(self, reason: str) -> Aborted:
        """Abort because of bad input (e.g. a framing error); returns the event."""
        self.abort(reason)
        return Aborted(reason, by_peer=False)

    def peer_closed(self) -> list[Event]:
        """The transport ended without ``op:abort``."""
        if self.state is State.ABORTED:
            return []
        self._end("connection closed")
        return [Aborted("connection closed", by_peer=True)]

    def _dispatch(self, op: Operation) -> list[Event]:
        if type(op) is Abort:
            self._out.clear()
            self._end(op.reason)
            return [Aborted(op.reason, by_peer=True)]
        if self.state is State.HANDSHAKE:
            if type(op) is not StartSession:
                raise HandshakeError("expected op:start-session first")
            return [self._on_start_session(op)]
        t = type(op)
        if t is Deliver:
            assert isinstance(op, Deliver)
            target = self._target(op.to)
            args = self._in_list(op.args)
            answer = None if op.answer_pos is None else self._new_answer(op.answer_pos)
            resolver = None if op.resolver is None else self._import(op.resolver)
            return [Delivered(target, args, answer, resolver)]
        if t is GcExports:
            assert isinstance(op, GcExports)
            return self._on_gc_exports(op)
        if t is GcAnswers:
            assert isinstance(op, GcAnswers)
            released = [
                h for h in (self._answers.pop(p, None) for p in op.positions) if h is not None
            ]
            return [AnswersReleased(released)] if released else []
        if t is Listen:
            assert isinstance(op, Listen)
            return [
                ListenRequested(self._target(op.to), self._import(op.listener), op.wants_partial)
            ]
        if t is Select:
            assert isinstance(op, Select)
            target = self._target(op.receiver)
            return [Selected(op.kind, target, op.key, self._new_answer(op.answer_pos))]
        raise ProtocolError("duplicate op:start-session")

    def _on_start_session(self, op: StartSession) -> Established:
        if op.version != CAPTP_VERSION:
            raise HandshakeError(f"unsupported CapTP version {op.version!r:.40}")
        signed = encode(location_signing_bytes(op.location_record))
        if not crypto.verify(op.public_key, op.signature, signed):
            raise HandshakeError("op:start-session location signature does not verify")
        if op.public_key == self.key.public:
            raise HandshakeError("peer reused our session key")
        self.peer_key = op.public_key
        self.peer_location = op.location
        self.state = State.OPEN
        return Established(op.location, op.public_key)

    def _on_gc_exports(self, op: GcExports) -> list[Event]:
        released: list[Any] = []
        for pos, delta in zip(op.positions, op.deltas, strict=True):
            entry = self._exports.get(pos)
            if entry is None:
                continue  # already released (a late or duplicate gc message)
            entry.count -= delta
            if entry.count <= 0:
                del self._exports[pos]
                del self._export_ids[id(entry.handle)]
                released.append(entry.handle)
        return [ExportsReleased(released)] if released else []


def _single_position(v: Record) -> int:
    if len(v.fields) != 1:
        raise ProtocolError(f"{v.label!r:.40} takes one position")
    return position(v.fields[0])
