"""The key-value state machine: named tables of key -> bytes, applied in log order.

Reads come in two kinds: the applied state (everything in committed Raft entries the
engine has applied) and the committed state (only what a signature covers). Rather
than keep two copies, the store remembers, for every write not yet covered, the
value it replaced; a committed read of a key with such writes returns the oldest
replaced value. ``settle`` drops those records once a signature covers them.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from charter.codec.syrup import encode
from charter.ledger.engine.errors import EngineSnapshotError
from charter.ledger.engine.tx import Write

_Key = tuple[str, str]


class KVStore:
    __slots__ = ("_order", "_pending", "tables")

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, bytes]] = {}
        self._pending: dict[_Key, list[Any]] = {}
        """Per key with writes not yet settled: [the value before the oldest, how many]."""
        self._order: deque[tuple[int, str, str, bytes | None]] = deque()
        """The unsettled writes in log order: (seqno, table, key, value written)."""

    def apply(self, seqno: int, writes: Iterable[Write]) -> None:
        """Apply one transaction's writes, remembering replaced values until settled."""
        tables = self.tables
        pending = self._pending
        order = self._order
        for table, key, value in writes:
            rows = tables.get(table)
            if rows is None:
                rows = tables[table] = {}
            prior = rows.get(key)
            if value is None:
                rows.pop(key, None)
                if not rows:
                    del tables[table]
            else:
                rows[key] = value
            tk = (table, key)
            past = pending.get(tk)
            if past is None:
                pending[tk] = [prior, 1]
            else:
                past[1] += 1
            order.append((seqno, table, key, value))

    def settle(self, below: int) -> None:
        """Writes at seqnos below ``below`` are now committed."""
        order = self._order
        pending = self._pending
        while order and order[0][0] < below:
            _, table, key, value = order.popleft()
            tk = (table, key)
            past = pending[tk]
            if past[1] == 1:
                del pending[tk]
            else:  # what this write wrote is what the next one of the key replaced
                past[0] = value
                past[1] -= 1

    def get(self, table: str, key: str) -> bytes | None:
        rows = self.tables.get(table)
        return None if rows is None else rows.get(key)

    def get_committed(self, table: str, key: str) -> bytes | None:
        past = self._pending.get((table, key))
        if past is not None:
            return past[0]  # type: ignore[no-any-return]
        return self.get(table, key)

    def items(self, table: str) -> Iterator[tuple[str, bytes]]:
        """The applied rows of ``table``, by key."""
        rows = self.tables.get(table, {})
        for key in sorted(rows):
            yield key, rows[key]

    def row_count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())

    def table_names(self) -> list[str]:
        return sorted(self.tables)

    def digest(self) -> bytes:
        """SHA-256 of the canonical Syrup encoding of every table (empty ones do not exist)."""
        return hashlib.sha256(encode(self.tables)).digest()

    # -- snapshots ----------------------------------------------------------------------

    def to_syrup(self) -> list[Any]:
        """[tables, unsettled] where unsettled is [[seqno, table, key, prior-or-false] ...]."""
        written: dict[_Key, bytes | None] = {}  # by the previous unsettled write of a key
        unsettled: list[list[Any]] = []
        for seqno, table, key, value in self._order:
            tk = (table, key)
            prior = written[tk] if tk in written else self._pending[tk][0]
            written[tk] = value
            unsettled.append([seqno, table, key, False if prior is None else prior])
        return [self.tables, unsettled]

    @classmethod
    def from_syrup(cls, value: object) -> KVStore:
        if not isinstance(value, list) or len(value) != 2:
            raise EngineSnapshotError("the state is [tables, unsettled]")
        raw_tables, raw_unsettled = value
        store = cls()
        if not isinstance(raw_tables, dict):
            raise EngineSnapshotError("tables are a dictionary")
        for table, rows in raw_tables.items():
            if type(table) is not str or not isinstance(rows, dict) or not rows:
                raise EngineSnapshotError("a table is a non-empty dictionary named by a string")
            for key, v in rows.items():
                if type(key) is not str or type(v) is not bytes:
                    raise EngineSnapshotError("a row is a string key and a bytes value")
            store.tables[table] = dict(rows)
        if not isinstance(raw_unsettled, list):
            raise EngineSnapshotError("unsettled writes are a list")
        last = 0
        writes: list[tuple[int, str, str, bytes | None]] = []
        for item in raw_unsettled:
            if not isinstance(item, list) or len(item) != 4:
                raise EngineSnapshotError("an unsettled write is [seqno, table, key, prior]")
            seqno, table, key, prior = item
            if type(seqno) is not int or seqno < last:
                raise EngineSnapshotError("unsettled writes are in seqno order")
            if type(table) is not str or type(key) is not str:
                raise EngineSnapshotError("an unsettled write names a table and a key")
            if prior is not False and type(prior) is not bytes:
                raise EngineSnapshotError("a replaced value is bytes or false")
            last = seqno
            writes.append((seqno, table, key, None if prior is False else prior))
        # What each write wrote: what the next write of its key replaced, or the value now.
        after: dict[_Key, bytes | None] = {}
        wrote: list[bytes | None] = [None] * len(writes)
        for i in range(len(writes) - 1, -1, -1):
            _, table, key, prior = writes[i]
            tk = (table, key)
            wrote[i] = after[tk] if tk in after else store.get(table, key)
            after[tk] = prior
        for (seqno, table, key, prior), value in zip(writes, wrote, strict=True):
            tk = (table, key)
            past = store._pending.get(tk)
            if past is None:
                store._pending[tk] = [prior, 1]
            else:
                past[1] += 1
            store._order.append((seqno, table, key, value))
        return store
