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
    __slots__ = ("_history", "_order", "tables")

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, bytes]] = {}
        self._history: dict[_Key, deque[bytes | None]] = {}
        self._order: deque[tuple[int, str, str]] = deque()

    def apply(self, seqno: int, writes: Iterable[Write]) -> None:
        """Apply one transaction's writes, remembering replaced values until settled."""
        tables = self.tables
        history = self._history
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
            past = history.get(tk)
            if past is None:
                history[tk] = deque((prior,))
            else:
                past.append(prior)
            order.append((seqno, table, key))

    def settle(self, below: int) -> None:
        """Writes at seqnos below ``below`` are now committed."""
        order = self._order
        history = self._history
        while order and order[0][0] < below:
            _, table, key = order.popleft()
            tk = (table, key)
            past = history[tk]
            past.popleft()
            if not past:
                del history[tk]

    def get(self, table: str, key: str) -> bytes | None:
        rows = self.tables.get(table)
        return None if rows is None else rows.get(key)

    def get_committed(self, table: str, key: str) -> bytes | None:
        past = self._history.get((table, key))
        if past:
            return past[0]
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
        cursor: dict[_Key, int] = {}
        unsettled: list[list[Any]] = []
        for seqno, table, key in self._order:
            tk = (table, key)
            i = cursor.get(tk, 0)
            cursor[tk] = i + 1
            prior = self._history[tk][i]
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
            tk = (table, key)
            store._history.setdefault(tk, deque()).append(None if prior is False else prior)
            store._order.append((seqno, table, key))
        return store
