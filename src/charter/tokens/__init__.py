"""Tokens: fungible and non-fungible pools whose conservation every node enforces.

``model`` holds operations and ledger rows, ``handler`` the ``tokens`` command handler
every node's engine runs, ``queries`` the reads the API serves, ``client`` the
submit-side helpers, ``component`` how tokens plug into a node. See docs/tokens.md.
"""

from __future__ import annotations

from charter.tokens.handler import TokensHandler
from charter.tokens.model import (
    APP,
    Approve,
    Burn,
    CreatePool,
    Mint,
    MintPolicy,
    Pool,
    PoolType,
    Transfer,
    TransferKind,
    TransferRecord,
)

__all__ = [
    "APP",
    "Approve",
    "Burn",
    "CreatePool",
    "Mint",
    "MintPolicy",
    "Pool",
    "PoolType",
    "TokensHandler",
    "Transfer",
    "TransferKind",
    "TransferRecord",
]
