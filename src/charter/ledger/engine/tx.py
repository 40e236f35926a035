"""Transactions: a write set over named tables, a claims digest and a client reference.

A transaction's writes are kept sorted by (table, key) with no key written twice,
so the write set has one canonical Syrup encoding: a list of ``[table, key, value]``
where a deletion's value is ``false``. That encoding is what the leaf's write-set
digest hashes. Names starting ``charter.`` belong to governance and to the engine's
own tables and are refused from application submitters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from charter.codec.syrup import Record, Symbol, encode
from charter.ledger.engine.errors import TransactionError
from charter.ledger.merkle import HASH_SIZE

TX_LABEL = Symbol("charter-tx")
RESERVED_PREFIX = "charter."
MAX_TABLE_BYTES = 128
MAX_KEY_BYTES = 1024
MAX_CLIENT_REF_BYTES = 256
MAX_WRITES = 10_000
ZERO_DIGEST = bytes(HASH_SIZE)
EMPTY_WRITE_SET_DIGEST = hashlib.sha256(encode([])).digest()
"""The write-set digest of an Invalid transaction: it applied nothing."""


class Write(NamedTuple):
    """Set ``table[key] = value``, or delete the key when ``value`` is None."""

    table: str
    key: str
    value: bytes | None


def check_name(name: object, what: str, max_bytes: int, *, reserved_ok: bool = False) -> str:
    """``name`` if it is a non-empty string of at most ``max_bytes`` UTF-8 bytes."""
    if type(name) is not str or not name:
        raise TransactionError(f"a {what} must be a non-empty string")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise TransactionError(f"a {what} must be valid UTF-8") from None
    if size > max_bytes:
        raise TransactionError(f"a {what} is at most {max_bytes} bytes, got {size}")
    if not reserved_ok and name.startswith(RESERVED_PREFIX):
        raise TransactionError(f"{what} {name[:40]!r} is reserved for governance and the engine")
    return name


def encode_write_set(writes: Sequence[Write]) -> bytes:
    """The canonical Syrup bytes of the write set, formatted directly: the leaf digest of
    every transaction hashes them, and the generic encoder visits each value in turn."""
    parts: list[bytes] = []
    add = parts.append
    for table, key, value in writes:
        if type(table) is not str or type(key) is not str:
            break
        tb = table.encode("utf-8")
        kb = key.encode("utf-8")
        if value is None:
            add(b'[%d"%s%d"%sf]' % (len(tb), tb, len(kb), kb))
        elif type(value) is bytes:
            add(b'[%d"%s%d"%s%d:%s]' % (len(tb), tb, len(kb), kb, len(value), value))
        else:
            break
    else:
        return b"[%s]" % b"".join(parts)
    return encode([[t, k, False if v is None else v] for t, k, v in writes])


def write_set_digest(writes: Sequence[Write]) -> bytes:
    """The leaf's write-set digest of ``writes`` (sorted, as a transaction keeps them)."""
    return hashlib.sha256(encode_write_set(writes)).digest()


@dataclass(frozen=True, slots=True)
class Transaction:
    """One transaction as submitted; build it with ``Transaction.of`` to validate and sort."""

    writes: tuple[Write, ...]
    claims_digest: bytes = ZERO_DIGEST
    client_ref: str = ""

    @classmethod
    def of(
        cls,
        writes: Iterable[Write | tuple[str, str, bytes | None]],
        *,
        claims_digest: bytes = ZERO_DIGEST,
        client_ref: str = "",
        reserved_ok: bool = False,
    ) -> Transaction:
        """A validated transaction; ``reserved_ok`` is for governance and the engine only."""
        items = sorted(Write(*w) for w in writes)
        return cls._checked(items, claims_digest, client_ref, reserved_ok=reserved_ok)

    @classmethod
    def _checked(
        cls,
        writes: Sequence[Write],
        claims_digest: object,
        client_ref: object,
        *,
        reserved_ok: bool,
    ) -> Transaction:
        if len(writes) > MAX_WRITES:
            raise TransactionError(f"a transaction writes at most {MAX_WRITES} keys")
        previous: tuple[str, str] | None = None
        for table, key, value in writes:
            check_name(table, "table name", MAX_TABLE_BYTES, reserved_ok=reserved_ok)
            check_name(key, "key", MAX_KEY_BYTES, reserved_ok=True)
            if value is not None and type(value) is not bytes:
                raise TransactionError("a value is bytes, or None to delete")
            here = (table, key)
            if previous is not None and here <= previous:
                raise TransactionError(
                    "writes must be sorted by (table, key) with no key written twice"
                )
            previous = here
        if type(claims_digest) is not bytes or len(claims_digest) != HASH_SIZE:
            raise TransactionError("a claims digest is 32 bytes")
        if type(client_ref) is not str:
            raise TransactionError("a client reference is a string")
        try:
            ref_size = len(client_ref.encode("utf-8"))
        except UnicodeEncodeError:
            raise TransactionError("a client reference must be valid UTF-8") from None
        if ref_size > MAX_CLIENT_REF_BYTES:
            raise TransactionError(f"a client reference is at most {MAX_CLIENT_REF_BYTES} bytes")
        return cls(tuple(writes), claims_digest, client_ref)

    def write_set(self) -> list[list[Any]]:
        """The write set as the Syrup value its digest is taken over."""
        return [[t, k, False if v is None else v] for t, k, v in self.writes]

    def write_set_digest(self) -> bytes:
        return write_set_digest(self.writes)

    def to_record(self) -> Record:
        return Record(TX_LABEL, self.write_set(), self.claims_digest, self.client_ref)

    @classmethod
    def from_record(cls, value: object, *, reserved_ok: bool = False) -> Transaction:
        """Parse and validate a transaction received from the log (untrusted input)."""
        return cls.parse(value, reserved_ok=reserved_ok)[0]

    @classmethod
    def parse(cls, value: object, *, reserved_ok: bool = False) -> tuple[Transaction, bytes]:
        """``from_record`` and the write-set digest, hashed from the validated list as read."""
        if not isinstance(value, Record) or value.label != TX_LABEL or len(value.fields) != 3:
            raise TransactionError("not a charter-tx record")
        raw_writes, claims, ref = value.fields
        if not isinstance(raw_writes, list):
            raise TransactionError("a transaction's writes are a list")
        writes: list[Write] = []
        for raw in raw_writes:
            if not isinstance(raw, list) or len(raw) != 3:
                raise TransactionError("a write is [table, key, value]")
            table, key, v = raw
            if v is False:
                writes.append(Write(table, key, None))
            elif type(v) is bytes:
                writes.append(Write(table, key, v))
            else:
                raise TransactionError("a written value is bytes, or false to delete")
        tx = cls._checked(writes, claims, ref, reserved_ok=reserved_ok)
        # Validated: sorted, unique, exact types, so this list is the canonical write set.
        return tx, hashlib.sha256(encode(raw_writes)).digest()
