"""Proposals with their ballots counted against the thresholds, for vote bars.

The counts come from governance's own rules (``Threshold.needed`` over the active
members, as the handler decides), so the page draws what the ledger would decide rather
than a second implementation in JavaScript. A decided proposal is counted under the
rules in force now, which may differ from those it was decided under: its ``state``
is the decision, the bars only illustrate it.
"""

from __future__ import annotations

from typing import Any

from charter.api.gov import proposal_json
from charter.governance import state
from charter.governance.model import Proposal
from charter.governance.state import StateView

__all__ = ["proposal_tallies"]


def proposal_tallies(view: StateView, *, limit: int, state_filter: str | None) -> dict[str, Any]:
    """The newest ``limit`` proposals first, each with its tally."""
    if not state.bootstrapped(view):
        return {"bootstrapped": False, "voters": 0, "total": 0, "items": []}
    constitution = state.constitution(view)
    active = {m.name: m.roles for m in state.active_members(view)}
    proposals = state.proposals(view, state=state_filter)
    newest = proposals[-limit:][::-1]
    return {
        "bootstrapped": True,
        "voters": len(active),
        "total": len(proposals),
        "items": [{**proposal_json(p), "tally": _tally(p, constitution, active)} for p in newest],
    }


def _tally(p: Proposal, constitution: Any, active: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    voters = len(active)
    counted = {m: v for m, v in p.ballots.items() if m in active}
    yes = sum(1 for v in counted.values() if v)
    no = len(counted) - yes
    kinds = sorted({a.kind for a in p.actions}) or ["default"]
    rules: list[dict[str, Any]] = []
    needed = 0
    vetoes: list[dict[str, Any]] = []
    for kind in kinds:
        threshold = constitution.threshold(kind)
        need = threshold.needed(voters)
        needed = max(needed, need)
        rules.append({"kind": kind, **threshold.to_json(), "needed": need})
        if threshold.veto:
            holders = sorted(m for m, roles in active.items() if threshold.veto in roles)
            vetoes.append(
                {
                    "role": threshold.veto,
                    "holders": holders,
                    "for": [m for m in holders if counted.get(m) is True],
                    "against": [m for m in holders if counted.get(m) is False],
                }
            )
    return {
        "voters": voters,
        "for": yes,
        "against": no,
        "abstained": voters - len(counted),
        "needed": needed,
        "rejects_at": max(0, voters - needed + 1),
        "rules": rules,
        "vetoes": vetoes,
        "ignored": sorted(m for m in p.ballots if m not in active),
    }
