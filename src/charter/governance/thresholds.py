"""When a proposal is decided: thresholds and their resolution, pure functions.

A ``Threshold`` names how many of the active members must vote for:

- ``majority``: more than half of them (the default);
- ``count``: at least ``count`` of them (any M of N);
- ``all``: every one of them (unanimity).

``veto``, if set, names a role whose holders can block: a proposal is accepted only once
every active holder of that role has voted for it, and is rejected the moment one of
them votes against.

A proposal is **accepted** when enough members voted for it (and no veto stands in the
way), **rejected** when acceptance has become impossible (too many against, or a veto),
and otherwise stays **open**. Only ballots of active members count: a member removed
after voting no longer counts. A proposal with several actions needs the threshold of
every action kind it contains: accepted when all of them accept, rejected when any
rejects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from charter.codec.syrup import Record, Symbol
from charter.governance import records as r
from charter.governance.errors import RequestFormatError

THRESHOLD = Symbol("charter-gov-threshold")
RULES = ("majority", "count", "all")
Rule = Literal["majority", "count", "all"]
Decision = Literal["open", "accepted", "rejected"]


@dataclass(frozen=True, slots=True)
class Threshold:
    rule: Rule = "majority"
    count: int = 0
    veto: str = ""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise RequestFormatError(f"threshold rule: expected one of {', '.join(RULES)}")
        if self.rule == "count" and not 1 <= self.count <= 1024:
            raise RequestFormatError("threshold count: an M of N threshold needs 1 <= M <= 1024")
        if self.rule != "count" and self.count != 0:
            raise RequestFormatError("threshold count: only the 'count' rule takes a count")
        if self.veto:
            r.name(self.veto, "threshold veto role")

    def needed(self, voters: int) -> int:
        """How many for-ballots accept, among ``voters`` active members."""
        if self.rule == "majority":
            return voters // 2 + 1
        if self.rule == "all":
            return voters
        return self.count

    def satisfiable(self, voters: int) -> bool:
        return voters >= 1 and self.needed(voters) <= voters

    def to_record(self) -> Record:
        return Record(THRESHOLD, Symbol(self.rule), self.count, self.veto)

    @classmethod
    def from_record(cls, value: object) -> Threshold:
        f = r.record_fields(value, THRESHOLD, 3, "threshold")
        rule = r.symbol(f[0], "threshold rule", RULES)
        count = r.integer(f[1], "threshold count", high=1024)
        veto = r.text(f[2], "threshold veto role", limit=63)
        return cls(rule, count, veto)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"rule": self.rule}
        if self.rule == "count":
            out["count"] = self.count
        if self.veto:
            out["veto"] = self.veto
        return out

    @classmethod
    def from_json(cls, value: object) -> Threshold:
        if not isinstance(value, dict) or not set(value) <= {"rule", "count", "veto"}:
            raise RequestFormatError("threshold: expected {rule, count?, veto?}")
        rule = value.get("rule", "majority")
        if rule not in RULES:
            raise RequestFormatError(f"threshold rule: expected one of {', '.join(RULES)}")
        count = value.get("count", 0)
        veto = value.get("veto", "")
        if type(count) is not int or type(veto) is not str:
            raise RequestFormatError("threshold: count is an integer, veto a role name")
        return cls(rule, count, veto)


def decide(
    threshold: Threshold, voters: Mapping[str, Iterable[str]], ballots: Mapping[str, bool]
) -> Decision:
    """The decision of one threshold; ``voters`` maps each active member to its roles."""
    n = len(voters)
    counted = {m: v for m, v in ballots.items() if m in voters}
    yes = sum(1 for v in counted.values() if v)
    no = len(counted) - yes
    need = threshold.needed(n)
    if threshold.veto:
        holders = [m for m, roles in voters.items() if threshold.veto in roles]
        if any(counted.get(m) is False for m in holders):
            return "rejected"
        vetoes_pending = any(m not in counted for m in holders)
    else:
        vetoes_pending = False
    if n == 0 or need > n or no > n - need:
        return "rejected"
    if yes >= need and not vetoes_pending:
        return "accepted"
    return "open"


def decide_all(
    thresholds: Iterable[Threshold],
    voters: Mapping[str, Iterable[str]],
    ballots: Mapping[str, bool],
) -> Decision:
    """Accepted when every threshold accepts, rejected when any rejects."""
    decisions = [decide(t, voters, ballots) for t in thresholds]
    if "rejected" in decisions:
        return "rejected"
    if decisions and all(d == "accepted" for d in decisions):
        return "accepted"
    return "open"


__all__ = ["RULES", "Decision", "Rule", "Threshold", "decide", "decide_all"]
