"""Alembic migrations of the node's index database (run by ``charter.store.migrate``)."""
