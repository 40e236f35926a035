"""The ordering rule, as properties of the pure aggregator.

A scenario is a set of messages from three nodes on a few topics (one group: every node),
batched, put in a random ledger order, and fed to an aggregator with the batches arriving
at random points relative to the pins (some never, in some cases).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from charter.multiparty.aggregator import Aggregator, FailurePolicy, Held, Released
from charter.multiparty.model import Group, context_of, pin_of

NODES = ("n1", "n2", "n3")
GROUP = Group.of(NODES).hash


@dataclass(frozen=True)
class Msg:
    id: str
    author: str
    topic: str
    nonce: int

    @property
    def context(self) -> bytes:
        return context_of(self.topic, GROUP)

    @property
    def pin(self) -> bytes:
        return pin_of(self.context, self.author, self.nonce)


@dataclass(frozen=True)
class Scenario:
    batches: list[tuple[bytes, str, list[Msg]]]
    ledger: list[int]
    """Batch indexes in ledger order."""


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    sends = draw(
        st.lists(
            st.tuples(st.sampled_from(NODES), st.sampled_from(["a", "b", "c"])),
            min_size=1,
            max_size=30,
        )
    )
    nonces: dict[tuple[str, str], int] = {}
    msgs = []
    for i, (author, topic) in enumerate(sends):
        n = nonces.get((topic, author), 0)
        nonces[(topic, author)] = n + 1
        msgs.append(Msg(f"m{i}", author, topic, n))
    batches: list[tuple[bytes, str, list[Msg]]] = []
    for m in msgs:  # consecutive messages of one author may share a batch
        if batches and batches[-1][1] == m.author and draw(st.booleans()):
            batches[-1][2].append(m)
        else:
            batches.append((bytes([len(batches)]) * 32, m.author, [m]))
    ledger = draw(st.permutations(range(len(batches))))
    return Scenario(batches, list(ledger))


def _held(
    m: Msg, batch_hash: bytes, missing: frozenset[bytes] = frozenset(), pinned_by: str = "mp"
) -> Held:
    return Held(m.id, m.context, m.author, m.nonce, m.pin, batch_hash, set(missing), 0, pinned_by)


def _ledger_positions(s: Scenario) -> dict[str, tuple[int, int]]:
    pos = {}
    for seq, b in enumerate(s.ledger, start=1):
        for i, m in enumerate(s.batches[b][2]):
            pos[m.id] = (seq, i)
    return pos


def _expected_per_context(s: Scenario, missing: set[int] = frozenset()) -> dict[bytes, list[str]]:  # type: ignore[assignment]
    pos = _ledger_positions(s)
    out: dict[bytes, list[tuple[tuple[int, int], str, int]]] = {}
    for b, (_h, _a, ms) in enumerate(s.batches):
        for m in ms:
            out.setdefault(m.context, []).append((pos[m.id], m.id, b))
    return {c: [mid for _p, mid, _b in sorted(v)] for c, v in out.items()}


def run(
    s: Scenario,
    schedule: list[tuple[str, int]],
    policy: FailurePolicy | None = None,
    restore_at: int | None = None,
    final_time: int | None = None,
) -> tuple[Aggregator, list[Released]]:
    agg = Aggregator(policy)
    out: list[Released] = []
    for step, (kind, k) in enumerate(schedule):
        if restore_at == step:
            agg = Aggregator.restore(agg.snapshot(), policy)
        if kind == "pin":
            seq = s.ledger.index(k) + 1
            h, author, ms = s.batches[k]
            out += agg.pin_committed(seq, f"2.{seq}", seq * 1000, author, h, [m.pin for m in ms])
        else:
            h, author, ms = s.batches[k]
            out += agg.batch_arrived(h, author, NODES, [_held(m, h) for m in ms])
    if final_time is not None:
        out += agg.tick(final_time)
    return agg, out


@st.composite
def schedules(draw: st.DrawFn, s: Scenario, arrive: list[int]) -> list[tuple[str, int]]:
    pins = [("pin", b) for b in s.ledger]
    batches = [("batch", b) for b in draw(st.permutations(arrive))]
    out: list[tuple[str, int]] = []
    while pins or batches:
        if pins and (not batches or draw(st.booleans())):
            out.append(pins.pop(0))
        else:
            out.append(batches.pop(0))
    return out


def _per_context(out: list[Released]) -> dict[bytes, list[str | None]]:
    per: dict[bytes, list[str | None]] = {}
    for r in out:
        per.setdefault(r.context, []).append(r.message_id)
    return per


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_every_message_released_once_in_ledger_order_whatever_the_arrival(
    data: st.DataObject,
) -> None:
    s = data.draw(scenarios())
    everything = list(range(len(s.batches)))
    one = data.draw(schedules(s, everything))
    two = data.draw(schedules(s, everything))
    restore_at = data.draw(st.none() | st.integers(0, len(one)))
    agg1, out1 = run(s, one, restore_at=restore_at)
    _agg2, out2 = run(s, two)
    assert all(r.outcome == "confirmed" for r in out1 + out2)
    expected = _expected_per_context(s)
    assert _per_context(out1) == expected == _per_context(out2)
    assert agg1.held_ids() == [] and agg1.pending_heads() == 0
    for r in out1:  # a release names the pin at its ledger place
        assert r.pin.seqno >= 1


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_missing_batch_holds_back_its_own_contexts_only(data: st.DataObject) -> None:
    s = data.draw(scenarios())
    lost = set(data.draw(st.sets(st.integers(0, len(s.batches) - 1), max_size=3)))
    arrive = [b for b in range(len(s.batches)) if b not in lost]
    agg, out = run(s, data.draw(schedules(s, arrive)))
    pos = _ledger_positions(s)
    lost_ids = {m.id for b in lost for m in s.batches[b][2]}
    got = _per_context(out)
    for ctx, ids in _expected_per_context(s).items():
        cut = next((i for i, mid in enumerate(ids) if mid in lost_ids), len(ids))
        assert got.get(ctx, []) == ids[:cut]  # a prefix, up to the first lost message
        if cut < len(ids):
            head = ids[cut]
            for mid in ids[cut + 1 :]:
                if mid in lost_ids:
                    continue
                blocked = agg.blocked_by(mid)
                assert blocked is not None and blocked.waiting_for == "earlier"
                assert blocked.blocker is not None
                assert (blocked.blocker.seqno, blocked.blocker.index) == pos[head]
                assert blocked.batch_hash == next(
                    h for h, _a, ms in s.batches if any(m.id == head for m in ms)
                )
    released = {r.message_id for r in out}
    assert not (released & lost_ids)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_failure_policy_releases_the_rest_in_order(data: st.DataObject) -> None:
    s = data.draw(scenarios())
    lost = set(data.draw(st.sets(st.integers(0, len(s.batches) - 1), max_size=3)))
    arrive = [b for b in range(len(s.batches)) if b not in lost]
    policy = FailurePolicy(fail_after_us=1_000_000)  # deadlines pass only at the final tick
    final = 2_000_000
    _agg, out = run(s, data.draw(schedules(s, arrive)), policy, final_time=final)
    lost_ids = {m.id for b in lost for m in s.batches[b][2]}
    expected = _expected_per_context(s)
    got = _per_context(out)
    # A context none of whose batches arrived is unknown here: its pins stay anonymous.
    known = {c for c, ids in expected.items() if any(m not in lost_ids for m in ids)}
    want = {c: [None if m in lost_ids else m for m in expected[c]] for c in known}
    assert got == want
    for r in out:
        assert (r.outcome == "failed") == (r.message_id is None)


def test_blob_holds_its_context_and_blocked_by_names_it() -> None:
    agg = Aggregator()
    a1 = Msg("a1", "n1", "x", 0)
    a2 = Msg("a2", "n2", "x", 0)
    b1 = Msg("b1", "n1", "y", 0)
    blob = b"\xbb" * 32
    h1, h2, h3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    assert agg.batch_arrived(h1, "n1", NODES, [_held(a1, h1, frozenset({blob}))]) == []
    assert agg.batch_arrived(h2, "n2", NODES, [_held(a2, h2)]) == []
    blocked = agg.blocked_by("a2")
    assert blocked is not None and blocked.waiting_for == "pin"
    assert agg.pin_committed(1, "2.1", 10, "n1", h1, [a1.pin]) == []
    assert agg.pin_committed(2, "2.2", 20, "n2", h2, [a2.pin]) == []
    blocked = agg.blocked_by("a2")
    assert blocked is not None and blocked.waiting_for == "earlier"
    assert blocked.blocker_message == "a1" and blocked.blobs == (blob,)
    own = agg.blocked_by("a1")
    assert own is not None and own.waiting_for == "blobs" and own.blobs == (blob,)
    # another context is not held back
    agg.batch_arrived(h3, "n1", NODES, [_held(b1, h3)])
    out = agg.pin_committed(3, "2.3", 30, "n1", h3, [b1.pin])
    assert [r.message_id for r in out] == ["b1"]
    out = agg.blob_arrived(blob)
    assert [r.message_id for r in out] == ["a1", "a2"]
    assert agg.blocked_by("a2") is None


def test_a_pin_is_placed_only_for_the_node_it_names() -> None:
    agg = Aggregator()
    a = Msg("a", "n1", "x", 0)
    h, forged = b"\x01" * 32, b"\x09" * 32
    agg.batch_arrived(h, "n1", NODES, [_held(a, h)])
    assert agg.pin_committed(1, "2.1", 10, "n3", forged, [a.pin]) == []  # n3 replays n1's pin
    assert [r.message_id for r in agg.pin_committed(2, "2.2", 20, "n1", h, [a.pin])] == ["a"]


def test_replayed_seqnos_are_ignored_and_state_survives_a_restore() -> None:
    agg = Aggregator(FailurePolicy(fail_after_us=100))
    a0, a1 = Msg("a0", "n1", "x", 0), Msg("a1", "n1", "x", 1)
    h0, h1 = b"\x01" * 32, b"\x02" * 32
    agg.pin_committed(5, "2.5", 1000, "n1", h0, [a0.pin])
    agg.pin_committed(6, "2.6", 1010, "n1", h1, [a1.pin])
    agg.batch_arrived(h1, "n1", NODES, [_held(a1, h1)])
    back = Aggregator.restore(agg.snapshot(), agg.policy)
    assert back.snapshot() == agg.snapshot()
    assert back.pin_committed(5, "2.5", 1000, "n1", h0, [a0.pin]) == []
    assert back.next_deadline_us() == 1100
    out = back.tick(1100)
    assert [(r.outcome, r.message_id) for r in out] == [("failed", None), ("confirmed", "a1")]
    late = back.batch_arrived(h0, "n1", NODES, [_held(a0, h0)])
    assert [(r.outcome, r.message_id) for r in late] == [("failed", "a0")]


def test_an_outsider_learns_nothing_and_holds_nothing() -> None:
    agg = Aggregator()
    for seq in range(1, 50):
        m = Msg(f"m{seq}", NODES[seq % 3], f"t{seq % 4}", seq // 12)
        assert agg.pin_committed(seq, f"2.{seq}", seq, m.author, bytes(32), [m.pin]) == []
    assert agg.pending_heads() == 0 and agg.held_ids() == []


def test_unknown_pins_are_bounded_by_count_and_ledger_time() -> None:
    agg = Aggregator(FailurePolicy(max_unknown=10, unknown_retention_us=1_000))
    for seq in range(1, 40):
        agg.pin_committed(seq, f"2.{seq}", 100, "n1", bytes(32), [bytes([seq]) * 32])
    assert len(agg._unknown) == 10
    kept = sorted(r.seqno for r in agg._unknown.values())
    assert kept == list(range(30, 40))  # the newest
    agg.tick(5_000)  # past the retention window
    assert len(agg._unknown) == 0


def test_unknown_pins_persist_apart_from_the_snapshot() -> None:
    agg = Aggregator()
    a0, a1 = Msg("a0", "n1", "x", 0), Msg("a1", "n1", "x", 1)
    h0, h1 = b"\x01" * 32, b"\x02" * 32
    agg.pin_committed(1, "2.1", 10, "n1", h0, [a0.pin])
    agg.pin_committed(2, "2.2", 20, "n1", h1, [a1.pin])
    kept = agg.take_new_unknown()
    assert [r.seqno for r in kept] == [1, 2] and agg.take_new_unknown() == []
    small = agg.snapshot(with_unknown=False)
    assert len(small) < len(agg.snapshot())
    back = Aggregator.restore(small, agg.policy, kept)
    assert back.snapshot() == agg.snapshot()
    # the batch of the second reveals the context: both pins find their places
    out = back.batch_arrived(h1, "n1", NODES, [_held(a1, h1)])
    assert out == []
    out = back.batch_arrived(h0, "n1", NODES, [_held(a0, h0)])
    assert [r.message_id for r in out] == ["a0", "a1"]


# -- messages bound to a token operation --------------------------------------------------
#
# A bound message travels alone in its batch and its pin in a ``tokens`` transaction: a
# valid one places it like an ``mp`` pin, a refused one never places it and fails it.

REASON = "tokens.balance: 'n1' holds 0, sends 5"


@dataclass(frozen=True)
class BoundScenario:
    batches: list[tuple[bytes, str, list[Msg], str]]
    """(hash, author, messages, how it is pinned: "mp", "tokens" or "refused")."""
    ledger: list[int]


@st.composite
def bound_scenarios(draw: st.DrawFn) -> BoundScenario:
    base = draw(scenarios())
    batches: list[tuple[bytes, str, list[Msg], str]] = []
    for _h, author, ms in base.batches:
        for m in ms:  # bound messages go alone into their batch
            how = draw(st.sampled_from(["mp", "tokens", "refused"]))
            if how == "mp" and batches and batches[-1][1] == author and batches[-1][3] == "mp":
                batches[-1][2].append(m)
            else:
                batches.append((bytes([len(batches)]) * 32, author, [m], how))
    ledger = draw(st.permutations(range(len(batches))))
    return BoundScenario(batches, list(ledger))


def run_bound(
    s: BoundScenario, schedule: list[tuple[str, int]], restore_at: int | None = None
) -> tuple[Aggregator, list[Released]]:
    agg = Aggregator()
    out: list[Released] = []
    for step, (kind, k) in enumerate(schedule):
        if restore_at == step:
            agg = Aggregator.restore(agg.snapshot(), agg.policy)
        h, author, ms, how = s.batches[k]
        if kind == "pin":
            seq = s.ledger.index(k) + 1
            pins = [m.pin for m in ms]
            if how == "refused":
                out += agg.pin_refused(
                    seq, f"2.{seq}", seq * 1000, author, h, pins, REASON, "tokens"
                )
            else:
                out += agg.pin_committed(seq, f"2.{seq}", seq * 1000, author, h, pins, how)
        else:
            pinned_by = "mp" if how == "mp" else "tokens"
            held = [_held(m, h, pinned_by=pinned_by) for m in ms]
            out += agg.batch_arrived(h, author, NODES, held)
    return agg, out


def _bound_schedule(draw: st.DrawFn, s: BoundScenario) -> list[tuple[str, int]]:
    pins = [("pin", b) for b in s.ledger]
    batches = [("batch", b) for b in draw(st.permutations(range(len(s.batches))))]
    out: list[tuple[str, int]] = []
    while pins or batches:
        if pins and (not batches or draw(st.booleans())):
            out.append(pins.pop(0))
        else:
            out.append(batches.pop(0))
    return out


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_a_refused_pin_fails_only_its_message_and_holds_nothing_back(
    data: st.DataObject,
) -> None:
    s = data.draw(bound_scenarios())
    one = _bound_schedule(data.draw, s)
    two = _bound_schedule(data.draw, s)
    restore_at = data.draw(st.none() | st.integers(0, len(one)))
    agg1, out1 = run_bound(s, one, restore_at)
    agg2, out2 = run_bound(s, two)
    refused = {m.id for _h, _a, ms, how in s.batches if how == "refused" for m in ms}
    position = {}
    for seq, b in enumerate(s.ledger, start=1):
        for i, m in enumerate(s.batches[b][2]):
            position[m.id] = (seq, i, m.context)
    want: dict[bytes, list[str]] = {}
    for mid, (_seq, _i, ctx) in sorted(position.items(), key=lambda kv: kv[1][:2]):
        if mid not in refused:
            want.setdefault(ctx, []).append(mid)
    for agg, out in ((agg1, out1), (agg2, out2)):
        confirmed: dict[bytes, list[str]] = {}
        for r in out:
            if r.outcome == "confirmed":
                assert r.message_id is not None
                confirmed.setdefault(r.context, []).append(r.message_id)
        assert confirmed == want  # every other message, in ledger order, held by nothing
        failures = [r for r in out if r.outcome == "failed"]
        assert sorted(r.message_id or "" for r in failures) == sorted(refused)  # once each
        for r in failures:  # failed with the refusal, at the refused transaction
            assert r.reason == REASON and r.pin.refusal == REASON
            assert (r.pin.seqno, r.pin.index) == position[r.message_id or ""][:2]
        assert agg.held_ids() == [] and agg.pending_heads() == 0


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_refusals_survive_a_restore_with_unknown_pins_kept_apart(data: st.DataObject) -> None:
    """A node that saw the refusals before any batch (it keeps them as unknown pins, in
    their own rows) restarts, then every batch arrives: the outcome is the same."""
    s = data.draw(bound_scenarios())
    agg = Aggregator()
    kept = []
    for k in s.ledger:
        seq = s.ledger.index(k) + 1
        h, author, ms, how = s.batches[k]
        pins = [m.pin for m in ms]
        if how == "refused":
            assert agg.pin_refused(seq, f"2.{seq}", seq, author, h, pins, REASON, "tokens") == []
        else:
            assert agg.pin_committed(seq, f"2.{seq}", seq, author, h, pins, how) == []
        kept += agg.take_new_unknown()
    back = Aggregator.restore(agg.snapshot(with_unknown=False), agg.policy, kept)
    assert back.snapshot() == agg.snapshot()
    out: list[Released] = []
    for b in data.draw(st.permutations(range(len(s.batches)))):
        h, author, ms, how = s.batches[b]
        pinned_by = "mp" if how == "mp" else "tokens"
        out += back.batch_arrived(h, author, NODES, [_held(m, h, pinned_by=pinned_by) for m in ms])
    refused = {m.id for _h, _a, ms, how in s.batches if how == "refused" for m in ms}
    assert {r.message_id for r in out if r.outcome == "failed"} == refused
    assert {r.message_id for r in out if r.outcome == "confirmed"} == (
        {m.id for _h, _a, ms, _w in s.batches for m in ms} - refused
    )
    assert back.held_ids() == []


def test_a_bound_message_is_confirmed_only_by_its_own_apps_transaction() -> None:
    agg = Aggregator()
    bound, plain = Msg("b", "n1", "x", 0), Msg("p", "n1", "x", 1)
    hb, hp = b"\x01" * 32, b"\x02" * 32
    agg.batch_arrived(hb, "n1", NODES, [_held(bound, hb, pinned_by="tokens")])
    agg.batch_arrived(hp, "n1", NODES, [_held(plain, hp)])
    out = agg.pin_committed(1, "2.1", 10, "n1", hb, [bound.pin])  # an mp command, not tokens
    assert [(r.outcome, r.message_id) for r in out] == [("failed", "b")]
    assert "pinned by a mp transaction" in out[0].reason
    out = agg.pin_committed(2, "2.2", 20, "n1", hp, [plain.pin], "tokens")
    assert [(r.outcome, r.message_id) for r in out] == [("failed", "p")]
    # a later valid pin of the same message finds no place: the first one decided
    assert agg.pin_committed(3, "2.3", 30, "n1", hb, [bound.pin], "tokens") == []


def test_a_refusal_counts_only_from_the_node_the_pin_names_and_only_first() -> None:
    agg = Aggregator()
    a0, a1 = Msg("a0", "n1", "x", 0), Msg("a1", "n1", "x", 1)
    h0, h1 = b"\x01" * 32, b"\x02" * 32
    agg.batch_arrived(h0, "n1", NODES, [_held(a0, h0, pinned_by="tokens")])
    # n2 carries n1's pin in a refused operation: it says nothing about n1's message
    assert agg.pin_refused(1, "2.1", 10, "n2", h0, [a0.pin], REASON, "tokens") == []
    assert agg.blocked_by("a0") is not None
    out = agg.pin_committed(2, "2.2", 20, "n1", h0, [a0.pin], "tokens")
    assert [(r.outcome, r.message_id, r.pin.tx_id) for r in out] == [("confirmed", "a0", "2.2")]
    # a refusal after the placement changes nothing
    assert agg.pin_refused(3, "2.3", 30, "n1", h0, [a0.pin], REASON, "tokens") == []
    # a refusal before the batch: the batch fails on arrival, and the pin cannot be placed
    assert agg.pin_refused(4, "2.4", 40, "n1", h1, [a1.pin], REASON, "tokens") == []
    assert agg.pin_committed(5, "2.5", 50, "n1", h1, [a1.pin], "tokens") == []
    back = Aggregator.restore(agg.snapshot(), agg.policy)
    assert back.snapshot() == agg.snapshot()
    late = back.batch_arrived(h1, "n1", NODES, [_held(a1, h1, pinned_by="tokens")])
    assert [(r.outcome, r.message_id, r.reason, r.pin.tx_id) for r in late] == [
        ("failed", "a1", REASON, "2.4")
    ]
    assert back.held_ids() == []
