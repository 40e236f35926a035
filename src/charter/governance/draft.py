"""A write overlay on a state view: actions read their own earlier writes.

A proposal's actions run in order against a ``Draft``; if one fails, the draft is
thrown away and nothing it held is written. ``child()`` gives a nested draft whose
changes ``merge`` into its parent only on success.
"""

from __future__ import annotations

from collections.abc import Iterator

from charter.governance.state import StateView
from charter.ledger.engine.tx import Write


class Draft:
    __slots__ = ("_base", "_changes")

    def __init__(self, base: StateView) -> None:
        self._base = base
        self._changes: dict[tuple[str, str], bytes | None] = {}

    def get(self, table: str, key: str) -> bytes | None:
        if (table, key) in self._changes:
            return self._changes[(table, key)]
        return self._base.get(table, key)

    def items(self, table: str) -> Iterator[tuple[str, bytes]]:
        rows = dict(self._base.items(table))
        for (t, k), v in self._changes.items():
            if t == table:
                if v is None:
                    rows.pop(k, None)
                else:
                    rows[k] = v
        for key in sorted(rows):
            yield key, rows[key]

    def put(self, table: str, key: str, value: bytes | None) -> None:
        self._changes[(table, key)] = value

    def child(self) -> Draft:
        return Draft(self)

    def merge(self, child: Draft) -> None:
        self._changes.update(child._changes)

    def writes(self) -> list[Write]:
        return sorted(Write(t, k, v) for (t, k), v in self._changes.items())


__all__ = ["Draft"]
