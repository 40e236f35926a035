"""Errors of the node's index database."""

from __future__ import annotations

from charter.errors import CharterError

__all__ = ["StoreConflict", "StoreError", "StoreUnavailable"]


class StoreError(CharterError):
    code = "store.error"


class StoreUnavailable(StoreError):
    """The database cannot be opened or migrated (bad URL, unreachable server)."""

    code = "store.unavailable"


class StoreConflict(StoreError):
    """A write collided with a uniqueness rule (a name or idempotency key already used)."""

    code = "store.conflict"
