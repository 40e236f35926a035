"""Properties of threshold resolution (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from charter.governance.thresholds import Threshold, decide, decide_all

NAMES = [f"m{i}" for i in range(9)]


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[Threshold, dict[str, tuple[str, ...]], list[tuple[str, bool]]]:
    n = draw(st.integers(1, len(NAMES)))
    voters = {
        name: tuple(draw(st.sets(st.sampled_from(["member", "auditor"]), min_size=1)))
        for name in NAMES[:n]
    }
    rule = draw(st.sampled_from(["majority", "count", "all"]))
    count = draw(st.integers(1, n)) if rule == "count" else 0
    veto = draw(st.sampled_from(["", "auditor"]))
    # each member (and one outsider) votes at most once, in some order
    order = draw(st.permutations([*NAMES[:n], "outsider"]))
    k = draw(st.integers(0, len(order)))
    ballots = [(name, draw(st.booleans())) for name in order[:k]]
    return Threshold(rule, count, veto), voters, ballots  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(situations())
def test_a_decision_is_final(
    s: tuple[Threshold, dict[str, tuple[str, ...]], list[tuple[str, bool]]],
) -> None:
    threshold, voters, ballots = s
    seen: dict[str, bool] = {}
    decided = None
    for name, vote in ballots:
        seen[name] = vote
        d = decide(threshold, voters, seen)
        if decided is not None:
            assert d == decided
        elif d != "open":
            decided = d


@settings(max_examples=40, deadline=None)
@given(situations())
def test_everyone_voting_decides(
    s: tuple[Threshold, dict[str, tuple[str, ...]], list[tuple[str, bool]]],
) -> None:
    threshold, voters, ballots = s
    seen = dict(ballots)
    for name in voters:
        seen.setdefault(name, True)
    assert decide(threshold, voters, seen) != "open"


@settings(max_examples=40, deadline=None)
@given(situations())
def test_outcome_matches_the_rule(
    s: tuple[Threshold, dict[str, tuple[str, ...]], list[tuple[str, bool]]],
) -> None:
    threshold, voters, ballots = s
    seen = {m: v for m, v in ballots if m in voters}
    n = len(voters)
    yes = sum(seen.values())
    no = len(seen) - yes
    need = {"majority": n // 2 + 1, "all": n, "count": threshold.count}[threshold.rule]
    holders = [m for m, roles in voters.items() if threshold.veto and threshold.veto in roles]
    d = decide(threshold, voters, dict(ballots))
    if any(seen.get(h) is False for h in holders) or no > n - need:
        assert d == "rejected"
    elif yes >= need and all(seen.get(h) is True for h in holders):
        assert d == "accepted"
    else:
        assert d == "open"
    if d == "accepted":
        assert 2 * yes > n or threshold.rule == "count"
    if threshold.rule == "all" and d == "accepted":
        assert yes == n


@settings(max_examples=40, deadline=None)
@given(situations())
def test_more_support_never_hurts(
    s: tuple[Threshold, dict[str, tuple[str, ...]], list[tuple[str, bool]]],
) -> None:
    """Turning an against-ballot into a for-ballot never turns acceptance into rejection."""
    threshold, voters, ballots = s
    seen = dict(ballots)
    against = [m for m, v in seen.items() if not v]
    if not against:
        return
    before = decide(threshold, voters, seen)
    seen[against[0]] = True
    after = decide(threshold, voters, seen)
    rank = {"rejected": 0, "open": 1, "accepted": 2}
    assert rank[after] >= rank[before]


@settings(max_examples=40, deadline=None)
@given(situations(), situations())
def test_several_kinds_need_every_threshold(
    a: tuple[Threshold, dict[str, tuple[str, ...]], list[tuple[str, bool]]],
    b: tuple[Threshold, dict[str, tuple[str, ...]], list[tuple[str, bool]]],
) -> None:
    voters, ballots = a[1], dict(a[2])
    t1, t2 = a[0], b[0]
    if t2.rule == "count" and t2.count > len(voters):
        t2 = Threshold("count", len(voters), t2.veto)
    both = decide_all([t1, t2], voters, ballots)
    d1, d2 = decide(t1, voters, ballots), decide(t2, voters, ballots)
    if "rejected" in (d1, d2):
        assert both == "rejected"
    elif d1 == d2 == "accepted":
        assert both == "accepted"
    else:
        assert both == "open"


def test_examples() -> None:
    three = {"a": ("member",), "b": ("member",), "c": ("member",)}
    assert decide(Threshold(), three, {"a": True}) == "open"
    assert decide(Threshold(), three, {"a": True, "b": True}) == "accepted"
    assert decide(Threshold(), three, {"a": False, "b": False}) == "rejected"
    assert decide(Threshold("all"), three, {"a": True, "b": True}) == "open"
    assert decide(Threshold("all"), three, {"a": False}) == "rejected"
    assert decide(Threshold("count", 1), three, {"c": True}) == "accepted"
    assert decide(Threshold(), three, {"x": True, "y": True, "a": True}) == "open"
    assert not Threshold("count", 4).satisfiable(3)
