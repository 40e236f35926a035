"""Who may create a pool: the constitution's policy, read from ledger state.

Governance keeps the constitution in ledger state and exposes it as
``charter.governance.state.constitution(view)``. The tokens handler reads its
``token_pool_creation`` attribute (``"any"``: any member's node may create a pool;
``"governance"``: only a governance action may). Until governance provides it, or when
the constitution does not say, any member may create a pool.

The module is looked up by name at call time so that tokens does not depend on
governance being installed; every node runs the same code, so the answer is the same
on every node.
"""

from __future__ import annotations

import importlib
from enum import StrEnum
from typing import Any

from charter.errors import CharterError
from charter.ledger.engine import StateView


class PoolCreation(StrEnum):
    ANY = "any"
    GOVERNANCE = "governance"


def _constitution_reader() -> Any:
    try:
        module = importlib.import_module("charter.governance.state")
    except ImportError:
        return None
    return getattr(module, "constitution", None)


def pool_creation_policy(view: StateView) -> PoolCreation:
    """The constitution's pool creation policy as of ``view``."""
    reader = _constitution_reader()
    if reader is None:
        return PoolCreation.ANY
    try:
        constitution = reader(view)
    except CharterError:  # no constitution in this state yet: the default holds
        return PoolCreation.ANY
    value = getattr(constitution, "token_pool_creation", None)
    if value is None and isinstance(constitution, dict):
        value = constitution.get("token_pool_creation")
    if value == PoolCreation.GOVERNANCE.value:
        return PoolCreation.GOVERNANCE
    return PoolCreation.ANY


__all__ = ["PoolCreation", "pool_creation_policy"]
