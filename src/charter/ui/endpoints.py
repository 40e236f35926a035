"""Read-only REST routes the explorer needs and no other route serves.

Mounted at ``/api/v1/explorer``. Each answers from this node's own state (and, for the
network, what its peers' APIs answer); none writes anything. Errors are problem+json
like every other route.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Query

from charter.api.problems import PROBLEM_JSON, Problem
from charter.governance.model import PROPOSAL_STATES, ProposalState
from charter.node.ledger_service import LedgerService
from charter.ui.network import NetworkView
from charter.ui.recent import KINDS, LedgerRecorder
from charter.ui.tally import proposal_tallies

__all__ = ["PREFIX", "explorer_api_router"]

PREFIX: Final = "/api/v1/explorer"
MAX_LIMIT: Final = 500

_PROBLEM: Final[dict[int | str, dict[str, Any]]] = {
    422: {"description": "a bad query parameter", "content": {PROBLEM_JSON: {}}},
}


def explorer_api_router(
    service: LedgerService, *, recorder: LedgerRecorder, network: NetworkView
) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["explorer"], responses=_PROBLEM)

    @router.get("/network", summary="Every node as this node sees it, and the links between them")
    async def network_view() -> dict[str, Any]:
        """Each node's member, role (a learner as ``learner``), term, commit and applied
        index, lag behind the leader, readiness and connected peers; ``reachable`` is
        false with an ``error`` for a node whose API did not answer within a second, and
        null when no API address is known for it. ``links`` pairs nodes either of which
        reports the other connected (``both`` when each does)."""
        return await network.describe()

    @router.get("/transactions", summary="The newest transactions this node applied")
    async def transactions(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="most items answered")] = 100,
        before: Annotated[
            int | None, Query(ge=1, description="only transactions below this seqno")
        ] = None,
        kind: Annotated[
            list[str] | None, Query(description=f"only these kinds: {', '.join(sorted(KINDS))}")
        ] = None,
    ) -> dict[str, Any]:
        """Newest first, with each transaction's current status (``Pending``, ``Committed``,
        ``Invalid`` with its ``reason``), kind, submitting node and member, and for a
        Committed one the path of its JSON receipt. A signature transaction carries
        ``covers``: the seqnos it newly signs (``from`` inclusive, ``upto`` exclusive).
        Only transactions applied since this node started are held (``capacity`` of
        them); ``oldest_held`` is the first seqno still held."""
        kinds: frozenset[str] | None = None
        if kind:
            unknown = sorted(set(kind) - KINDS)
            if unknown:
                raise Problem(
                    422,
                    "api.validation",
                    f"kind: {unknown[0][:40]!r} is not one of {', '.join(sorted(KINDS))}",
                )
            kinds = frozenset(kind)
        return recorder.transactions(limit=limit, before=before, kinds=kinds)

    @router.get("/token-transfers", summary="The newest token mints, burns and transfers")
    async def token_transfers(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="most items answered")] = 50,
    ) -> list[dict[str, Any]]:
        """Newest first, in the shape of ``GET /api/v1/tokens/transfers``."""
        return recorder.token_transfers(limit=limit)

    @router.get("/proposals", summary="Proposals, newest first, with their ballots counted")
    async def proposals(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="most items answered")] = 50,
        state: Annotated[
            ProposalState | None,
            Query(description=f"only proposals in this state: {', '.join(PROPOSAL_STATES)}"),
        ] = None,
    ) -> dict[str, Any]:
        """Each proposal as ``GET /api/v1/gov/proposals`` answers it, plus ``tally``: the
        active members (``voters``), ballots ``for`` and ``against`` among them, the
        ``needed`` for-ballots under the current thresholds of its action kinds and the
        against-ballots that reject it (``rejects_at``)."""
        return proposal_tallies(service.engine, limit=limit, state_filter=state)

    return router
