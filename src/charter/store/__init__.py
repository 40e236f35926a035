"""The node's index database (SQLite or PostgreSQL, one code path) and its repositories."""

from charter.store.engine import Pulse, Store, open_store, store_url
from charter.store.errors import StoreConflict, StoreError, StoreUnavailable
from charter.store.models import Base

__all__ = [
    "Base",
    "Pulse",
    "Store",
    "StoreConflict",
    "StoreError",
    "StoreUnavailable",
    "open_store",
    "store_url",
]
