"""Commands: transactions whose writes the engine computes, on every node alike.

A plain transaction carries its write set; its submitter decided it. Governance,
tokens and multi-party pins need more: a rule checked against the state at the
transaction's place in the log (a balance, a threshold, a signature of a member).
Such a transaction carries ``<charter-cmd app body client-ref>`` instead: ``app``
names a ``CommandHandler`` every node registered with its engine, ``body`` is the
handler's own canonical bytes. Every node runs the same handler over the same state
in the same order, so every node computes the same writes, or the same refusal.

A handler is pure: no clock, no randomness, no I/O; time and identity arrive in the
``CommandContext``. It reads through ``ctx.get``/``ctx.items`` (the state as of the
previous transaction) and returns its writes; the engine applies them atomically. A
``CommandRefused`` makes the transaction Invalid with the refusal's rule and reason
and changes nothing. A handler may write only tables under its declared prefixes.

The leaf's write-set digest is taken over the computed writes and its claims digest
is ``sha256`` of the command record, so a receipt proves both what was asked and
what it did.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from charter.codec.syrup import Record, Symbol, encode
from charter.ledger.engine.errors import EngineError, TransactionError
from charter.ledger.engine.tx import MAX_CLIENT_REF_BYTES, RESERVED_PREFIX, Write, check_name

CMD_LABEL = Symbol("charter-cmd")
_CMD_LABEL_BYTES = encode(CMD_LABEL)
MAX_APP_BYTES = 64
MAX_BODY_BYTES = 1 << 20


class CommandRefused(EngineError):
    """A handler's deterministic refusal; the transaction becomes Invalid.

    ``rule`` is a short stable name of the violated rule (``"tokens.balance"``), shown
    to clients next to the human ``message``.
    """

    code = "ledger.engine.refused"

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule

    @property
    def reason(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True, slots=True)
class Command:
    """A command as submitted: the handler's name, its body bytes and a client reference."""

    app: str
    body: bytes
    client_ref: str = ""

    def __post_init__(self) -> None:
        check_name(self.app, "command app", MAX_APP_BYTES, reserved_ok=True)
        if type(self.body) is not bytes:
            raise TransactionError("a command body is bytes")
        if len(self.body) > MAX_BODY_BYTES:
            raise TransactionError(f"a command body is at most {MAX_BODY_BYTES} bytes")
        if type(self.client_ref) is not str:
            raise TransactionError("a client reference is a string")
        try:
            size = len(self.client_ref.encode("utf-8"))
        except UnicodeEncodeError:
            raise TransactionError("a client reference must be valid UTF-8") from None
        if size > MAX_CLIENT_REF_BYTES:
            raise TransactionError(f"a client reference is at most {MAX_CLIENT_REF_BYTES} bytes")

    def to_record(self) -> Record:
        return Record(CMD_LABEL, self.app, self.body, self.client_ref)

    def claims_digest(self) -> bytes:
        # encode(self.to_record()), formatted directly (every command's leaf hashes it)
        app = self.app.encode("utf-8")
        ref = self.client_ref.encode("utf-8")
        body = self.body
        return hashlib.sha256(
            b'<%s%d"%s%d:%s%d"%s>'
            % (_CMD_LABEL_BYTES, len(app), app, len(body), body, len(ref), ref)
        ).digest()

    @classmethod
    def from_record(cls, value: object) -> Command:
        """Parse a command read from the log (untrusted input)."""
        if not isinstance(value, Record) or value.label != CMD_LABEL or len(value.fields) != 3:
            raise TransactionError("not a charter-cmd record")
        app, body, ref = value.fields
        if type(app) is not str:
            raise TransactionError("a command app is a string")
        if (
            ref == ""
            and type(ref) is str
            and type(body) is bytes
            and len(body) <= MAX_BODY_BYTES
            and 0 < len(app) <= MAX_APP_BYTES
            and app.isascii()
        ):
            # what __post_init__ would accept, checked at once (one command per leaf)
            cmd = _new_command(cls)
            _set_app(cmd, app)
            _set_body(cmd, body)
            _set_ref(cmd, ref)
            return cmd
        return cls(app, body, ref)


_new_command = object.__new__
_set_app = Command.__dict__["app"].__set__
_set_body = Command.__dict__["body"].__set__
_set_ref = Command.__dict__["client_ref"].__set__


class StateView(Protocol):
    """Read access to the applied state, as a handler sees it."""

    def get(self, table: str, key: str) -> bytes | None: ...

    def items(self, table: str) -> Iterator[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """What the engine knows of a node that may submit batches: see ``nodes``."""

    name: str
    member: str


class CommandContext(NamedTuple):
    """Where and by whom a command runs; the same on every node.

    A named tuple rather than a frozen dataclass: one is built per command applied, and
    a frozen dataclass pays an ``object.__setattr__`` per field.
    """

    app: str
    submitter: str
    """The node whose signed batch carried the command (its signature verified)."""
    member: str
    """The member owning that node, per the engine's node directory ("" if unknown)."""
    view: int
    seqno: int
    tx_id: str
    batch_seq: int
    """The submitter's batch sequence number: its microsecond clock when it batched."""
    state: StateView
    nodes: Callable[[str], NodeRecord | None]
    """Look a node up by name in the engine's node directory."""

    def get(self, table: str, key: str) -> bytes | None:
        return self.state.get(table, key)

    def items(self, table: str) -> Iterator[tuple[str, bytes]]:
        return self.state.items(table)


class CommandHandler(Protocol):
    """One application of the engine; registered under its app name on every node."""

    @property
    def tables(self) -> Sequence[str]:
        """Table name prefixes this handler may write (``"charter.tokens."``)."""
        ...

    def execute(self, ctx: CommandContext, body: bytes) -> Sequence[Write]:
        """The writes ``body`` makes at ``ctx``; raise ``CommandRefused`` to refuse."""
        ...


_CHECKED_TABLES_MAX = 4096


def _check_table(app: str, prefixes: tuple[str, ...], table: str) -> None:
    if type(table) is not str:
        raise CommandRefused("engine.tables", f"handler {app!r} wrote a non-string table name")
    if not any(table.startswith(p) for p in prefixes):
        raise CommandRefused("engine.tables", f"handler {app!r} may not write table {table[:64]!r}")
    check_name(table, "table name", 128, reserved_ok=True)


def check_writes(
    app: str,
    prefixes: Sequence[str],
    writes: Sequence[Write],
    checked: set[str] | None = None,
) -> list[Write]:
    """``writes`` sorted and unique, each in a table the handler declared.

    ``checked`` holds table names already found valid for this handler (a handler
    writes few distinct tables): they are not checked again, and new ones are added.
    """
    out = sorted(writes)
    declared = tuple(prefixes)
    previous: tuple[str, str] | None = None
    for w in out:
        table, key, value = w
        if checked is None or type(table) is not str or table not in checked:
            _check_table(app, declared, table)
            if checked is not None and len(checked) < _CHECKED_TABLES_MAX:
                checked.add(table)
        if value is not None and type(value) is not bytes:
            raise CommandRefused("engine.value", f"handler {app!r} wrote a non-bytes value")
        here = (table, key)
        if previous == here:
            raise CommandRefused("engine.twice", f"handler {app!r} wrote {here!r} twice")
        previous = here
        # an ASCII key of at most 1024 characters is a valid name of at most 1024 bytes
        if type(key) is not str or not key or len(key) > 1024 or not key.isascii():
            check_name(key, "key", 1024, reserved_ok=True)
    return out


__all__ = [
    "CMD_LABEL",
    "RESERVED_PREFIX",
    "Command",
    "CommandContext",
    "CommandHandler",
    "CommandRefused",
    "NodeRecord",
    "StateView",
    "check_writes",
]
