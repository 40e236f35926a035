"""Typed errors of the ledger engine; each carries a stable ``code``."""

from __future__ import annotations

from charter.ledger.errors import LedgerError


class EngineError(LedgerError):
    """Base of the engine's errors."""

    code = "ledger.engine"


class TransactionError(EngineError):
    """A transaction refused before submission: bad or reserved names, oversized fields."""

    code = "ledger.engine.tx"


class BatchFormatError(EngineError):
    """Bytes that are not a well-formed batch or engine entry."""

    code = "ledger.engine.batch"


class EngineOrderError(EngineError):
    """Entries fed out of Raft order, or a call that needs state the engine does not have."""

    code = "ledger.engine.order"


class EngineHaltedError(EngineError):
    """The engine stopped applying after a divergence alarm; evidence is in ``alarms``."""

    code = "ledger.engine.halted"


class EngineSnapshotError(EngineError):
    """Snapshot bytes that are malformed or inconsistent."""

    code = "ledger.engine.snapshot"


class ReceiptUnavailableError(EngineError):
    """No receipt yet (not committed), or no longer (before the engine's snapshot base)."""

    code = "ledger.engine.receipt_unavailable"
