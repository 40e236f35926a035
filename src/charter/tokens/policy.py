"""Who may create a pool: the constitution's ``token_pools`` policy, read from ledger state.

``any-member``: any member's node may create a pool with a ``tokens`` command.
``proposal``: pools are created by governance only; the tokens handler refuses a
direct creation (``tokens.policy``), and an accepted governance action creates the pool
through ``charter.tokens.handler.create_pool_writes``. The constitution is ledger
state, so every node reads the same policy at the same place in the log.
"""

from __future__ import annotations

from enum import StrEnum

from charter.errors import CharterError
from charter.governance.state import constitution
from charter.ledger.engine import StateView


class PoolCreation(StrEnum):
    ANY = "any-member"
    GOVERNANCE = "proposal"


def pool_creation_policy(view: StateView) -> PoolCreation:
    """The constitution's pool creation policy as of ``view``."""
    try:
        policy = constitution(view).token_pools
    except CharterError:  # an unreadable constitution is governance's alarm, not ours
        return PoolCreation.ANY
    return PoolCreation.GOVERNANCE if policy == "proposal" else PoolCreation.ANY


__all__ = ["PoolCreation", "pool_creation_policy"]
