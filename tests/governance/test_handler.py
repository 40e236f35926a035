"""The governance handler on a bare engine: requests, resolution, actions, join."""

from __future__ import annotations

import pytest

from charter.governance import state
from charter.governance.model import Constitution
from charter.governance.requests import Ballot, Propose
from charter.governance.thresholds import Threshold
from charter.ledger.engine import TxStatus
from charter.ledger.engine.nodes import NodeStatus

from .conftest import MEASUREMENT, Gov, Keys, act, add_member, make_gov, rule


def test_bootstrap_writes_genesis_once(keys: Keys) -> None:
    g = make_gov(keys)
    early = g.propose("alice", add_member(keys))
    assert rule(early) == "gov.bootstrap"
    assert g.bootstrap().status is TxStatus.PENDING
    assert [m.name for m in state.members(g.engine)] == ["alice", "bob", "carol"]
    assert state.constitution(g.engine).measurements == (MEASUREMENT,)
    assert rule(g.bootstrap()) == "gov.bootstrap"


def test_readers_fall_back_to_genesis_before_bootstrap(keys: Keys) -> None:
    g = make_gov(keys)
    assert not state.bootstrapped(g.engine)
    assert state.member(g.engine, "bob", g.genesis) is not None
    assert [n.name for n in state.nodes(g.engine, g.genesis)] == [
        "alice-node",
        "bob-node",
        "carol-node",
    ]
    assert state.member(g.engine, "bob") is None


def test_majority_accepts_on_the_second_ballot_and_applies_in_that_tx(gov: Gov, keys: Keys) -> None:
    proposed = gov.propose("alice", add_member(keys))
    pid = proposed.tx_id
    p = state.proposal(gov.engine, pid)
    assert p is not None and p.state == "open" and p.ballots == {"alice": True}
    assert state.member(gov.engine, "dave") is None
    voted = gov.vote("bob", pid)
    p = state.proposal(gov.engine, pid)
    assert p is not None and p.state == "accepted" and p.decided_tx == voted.tx_id
    dave = state.member(gov.engine, "dave")
    assert dave is not None and dave.active and dave.public_key == keys.members["dave"].public_key
    assert any(w.table == state.MEMBERS_TABLE for w in voted.writes)
    assert rule(gov.vote("carol", pid)) == "gov.proposal.closed"


def test_against_votes_reject_once_acceptance_is_impossible(gov: Gov, keys: Keys) -> None:
    pid = gov.propose("alice", add_member(keys)).tx_id
    gov.vote("bob", pid, False)
    assert state.proposal(gov.engine, pid).state == "open"  # type: ignore[union-attr]
    gov.vote("carol", pid, False)
    assert state.proposal(gov.engine, pid).state == "rejected"  # type: ignore[union-attr]
    assert state.member(gov.engine, "dave") is None


def test_forged_unknown_replayed_stale_and_foreign_requests_are_refused(
    gov: Gov, keys: Keys
) -> None:
    pid = gov.propose("alice", add_member(keys)).tx_id
    forged = gov.signed("bob", Ballot(pid, True), key=keys.members["carol"])
    assert rule(gov.send(forged)) == "gov.signature"
    assert rule(gov.send(gov.signed("zed", Ballot(pid, True), key=keys.members["bob"]))) == (
        "gov.member"
    )
    foreign = gov.signed("bob", Ballot(pid, True), network_id=b"\x01" * 16)
    assert rule(gov.send(foreign)) == "gov.network"
    stale = gov.signed("bob", Ballot(pid, True), created_ms=gov.now_ms - 6 * 60 * 1000)
    assert rule(gov.send(stale)) == "gov.stale"
    ballot = gov.signed("bob", Ballot(pid, False))
    assert gov.send(ballot).status is TxStatus.PENDING
    assert rule(gov.send(ballot)) == "gov.replay"
    assert rule(gov.send(ballot, node="carol-node")) == "gov.replay"
    # a tampered body no longer matches its signature
    body = bytearray(ballot.body)
    body[-3] ^= 1
    from charter.governance.requests import SignedRequest

    tampered = SignedRequest(bytes(body), ballot.signature)
    assert rule(gov.send(tampered)) in ("gov.signature", "gov.format")
    assert state.proposal(gov.engine, pid).ballots == {"alice": True, "bob": False}  # type: ignore[union-attr]


def test_ledger_time_only_rises_and_old_nonces_are_forgotten(gov: Gov) -> None:
    start = state.ledger_ms(gov.engine)
    gov.now_ms += 10 * 60 * 1000
    gov.propose("alice", act("trigger_snapshot"))
    later = state.ledger_ms(gov.engine)
    assert later == gov.now_ms and later > start
    gov.now_ms -= 60 * 60 * 1000  # a submitter whose clock is behind cannot move time back
    tx = gov.send(gov.signed("alice", Propose("t", (act("trigger_snapshot"),))), "bob-node")
    assert rule(tx) == "gov.stale" and state.ledger_ms(gov.engine) == later
    gov.now_ms = later + 6 * 60 * 1000
    gov.propose("alice", act("trigger_snapshot"))
    from charter.codec.syrup import decode

    seen = decode(gov.engine.get(state.NONCES_TABLE, "alice") or b"")
    assert len(seen.fields[1]) == 1  # type: ignore[attr-defined]


def test_nonces_are_bounded_without_locking_a_member_out(
    gov: Gov, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter.governance import handler

    monkeypatch.setattr(handler, "MAX_NONCES_PER_SENDER", 3)
    snapshot = Propose("t", (act("trigger_snapshot"),))
    sent = [gov.signed("bob", snapshot, created_ms=gov.now_ms - 1000 + i) for i in range(5)]
    for signed in sent:
        assert gov.send(signed).reason is None
    assert rule(gov.send(sent[-1])) == "gov.replay"  # still remembered
    assert rule(gov.send(sent[0])) == "gov.stale"  # forgotten: at or below the floor
    at_floor = gov.signed("bob", snapshot, created_ms=gov.now_ms - 999)
    assert rule(gov.send(at_floor)) == "gov.stale"
    assert gov.send(gov.signed("bob", snapshot)).reason is None  # never locked out
    from charter.codec.syrup import decode

    record = decode(gov.engine.get(state.NONCES_TABLE, "bob") or b"")
    assert record.fields[0] == gov.now_ms - 998 and len(record.fields[1]) == 3  # type: ignore[attr-defined]


def test_a_removed_members_ballot_is_refused_and_no_longer_counts(gov: Gov, keys: Keys) -> None:
    open_pid = gov.propose("carol", act("trigger_snapshot")).tx_id
    pid = gov.propose("alice", act("remove_member", name="carol")).tx_id
    gov.vote("bob", pid)
    carol = state.member(gov.engine, "carol")
    assert carol is not None and carol.status == "removed"
    assert rule(gov.vote("carol", pid)) == "gov.member"
    # removing a member changes who votes: the other open proposal was dropped
    dropped = state.proposal(gov.engine, open_pid)
    assert dropped is not None and dropped.state == "dropped"


def test_an_unsatisfiable_threshold_is_refused(keys: Keys) -> None:
    g = make_gov(keys, Constitution({"default": Threshold("count", 3)}, (MEASUREMENT,)))
    g.bootstrap()
    tx = g.propose("alice", act("remove_member", name="carol"))
    assert rule(tx) == "gov.threshold.unsatisfiable"
    tx = g.propose(
        "alice", act("set_threshold", action="default", threshold={"rule": "count", "count": 4})
    )
    assert rule(tx) == "gov.threshold.unsatisfiable"


def test_withdraw_only_by_the_proposer(gov: Gov) -> None:
    pid = gov.propose("alice", act("trigger_snapshot")).tx_id
    assert rule(gov.withdraw("bob", pid)) == "gov.withdraw"
    assert gov.withdraw("alice", pid).status is TxStatus.PENDING
    assert state.proposal(gov.engine, pid).state == "withdrawn"  # type: ignore[union-attr]
    assert rule(gov.vote("bob", pid)) == "gov.proposal.closed"
    assert rule(gov.vote("bob", "9.999")) == "gov.proposal.unknown"


def test_a_vote_counts_once(gov: Gov) -> None:
    pid = gov.propose("alice", act("trigger_snapshot")).tx_id
    assert rule(gov.vote("alice", pid)) == "gov.ballot.twice"


def test_constitution_change_drops_other_open_proposals(gov: Gov) -> None:
    other = gov.propose("bob", act("trigger_snapshot")).tx_id
    pid = gov.propose("alice", act("add_measurement", measurement="cd" * 32)).tx_id
    gov.vote("carol", pid)
    assert state.proposal(gov.engine, pid).state == "accepted"  # type: ignore[union-attr]
    assert state.proposal(gov.engine, other).state == "dropped"  # type: ignore[union-attr]
    assert state.constitution(gov.engine).measurements == tuple(sorted((MEASUREMENT, "cd" * 32)))


def test_an_action_the_state_no_longer_allows_fails_the_proposal(gov: Gov) -> None:
    add = act("add_app_user", member="bob", name="clerk", roles=["reader"])
    first = gov.propose("alice", add).tx_id
    second = gov.propose("bob", add).tx_id
    gov.vote("carol", second)
    assert state.user(gov.engine, "bob", "clerk") is not None
    gov.vote("bob", first)
    p = state.proposal(gov.engine, first)
    assert p is not None and p.state == "failed" and p.reason.startswith("gov.user.exists")
    assert rule(gov.propose("alice", add)) == "gov.user.exists"


def test_veto_role_blocks_and_must_consent(keys: Keys) -> None:
    rules = Constitution({"default": Threshold("majority", veto="auditor")}, (MEASUREMENT,))
    g = make_gov(keys, rules)
    g.bootstrap()
    pid = g.propose(
        "alice", act("set_member_roles", name="carol", roles=["auditor", "member"])
    ).tx_id
    g.vote("bob", pid)  # no holder of the veto role yet: majority decides
    assert state.proposal(g.engine, pid).state == "accepted"  # type: ignore[union-attr]
    pid = g.propose("alice", act("trigger_snapshot")).tx_id
    g.vote("bob", pid)
    assert state.proposal(g.engine, pid).state == "open"  # type: ignore[union-attr]
    g.vote("carol", pid, False)
    assert state.proposal(g.engine, pid).state == "rejected"  # type: ignore[union-attr]


def test_join_writes_a_pending_node_and_trust_admits_it(gov: Gov, keys: Keys) -> None:
    pid = gov.propose("alice", add_member(keys)).tx_id
    gov.vote("bob", pid)
    from charter.governance.join import join_command

    assert rule(gov.run(join_command(gov.join_request(measurement="00" * 32)))) == "gov.measurement"
    forged = gov.join_request(signer=keys.nodes["bob-node"])
    assert rule(gov.run(join_command(forged))) == "gov.signature"
    wrong_member = gov.join_request(attester="carol")
    assert rule(gov.run(join_command(wrong_member))) == "gov.attestation"
    good = gov.join_request()
    assert gov.run(join_command(good)).reason is None
    assert rule(gov.run(join_command(good))) == "gov.replay"
    node = state.node_info(gov.engine, "dave-node")
    assert node is not None and node.status is NodeStatus.PENDING
    assert gov.engine.directory()["dave-node"].status is NodeStatus.PENDING
    assert gov.engine.node("dave-node") is None
    assert rule(gov.run(join_command(gov.join_request()))) == "gov.node.exists"
    pid = gov.propose("alice", act("trust_node", name="dave-node")).tx_id
    gov.vote("dave", pid)
    gov.vote("bob", pid)
    assert state.node_info(gov.engine, "dave-node").status is NodeStatus.TRUSTED  # type: ignore[union-attr]
    assert gov.engine.node("dave-node") is not None
    # the newly trusted node's own batches are now accepted
    assert gov.propose("dave", act("trigger_snapshot")).reason is None
    own = gov.run(gov.signed("dave", Ballot("0.0", True)).command(), "dave-node")
    assert rule(own) == "gov.proposal.unknown"  # the handler ran: the batch was accepted


def test_retire_node_removes_it_from_the_engine_directory(gov: Gov) -> None:
    pid = gov.propose("alice", act("retire_node", name="carol-node")).tx_id
    gov.vote("bob", pid)
    assert state.node_info(gov.engine, "carol-node").status is NodeStatus.RETIRED  # type: ignore[union-attr]
    assert gov.engine.node("carol-node") is None
    tx = gov.propose("alice", act("trigger_snapshot"))
    assert tx.reason is None
    refused = gov.run(gov.signed("carol", Ballot(tx.tx_id, True)).command(), "carol-node")
    assert refused.status is TxStatus.INVALID


def test_intents_users_and_token_policy(gov: Gov) -> None:
    actions = [
        act("transfer_leadership", node="bob-node"),
        act("trigger_snapshot"),
        act("add_app_user", member="alice", name="ops", roles=["admin", "reader"]),
        act("set_member_data", name="alice", data={"org": "Alice Ltd"}),
    ]
    pid = gov.propose("alice", *actions).tx_id
    gov.vote("carol", pid)
    lead = state.intent(gov.engine, "leadership")
    assert lead is not None and lead.target == "bob-node" and lead.tx_id != pid
    assert state.intent(gov.engine, "snapshot") is not None
    assert state.user(gov.engine, "alice", "ops").roles == ("admin", "reader")  # type: ignore[union-attr]
    assert state.member(gov.engine, "alice").data == {"org": "Alice Ltd"}  # type: ignore[union-attr]
    pid = gov.propose("bob", act("set_token_policy", token_pools="proposal")).tx_id
    gov.vote("carol", pid)
    assert state.constitution(gov.engine).token_pools == "proposal"
    pid = gov.propose("bob", act("remove_app_user", member="alice", name="ops")).tx_id
    gov.vote("carol", pid)
    assert state.users(gov.engine) == []


def test_every_node_computes_the_same_state(gov: Gov, keys: Keys) -> None:
    pid = gov.propose("alice", add_member(keys)).tx_id
    gov.vote("bob", pid, False)
    gov.vote("carol", pid)
    replica = make_gov(keys).engine
    replica.apply(gov.log)
    assert replica.state_digest() == gov.engine.state_digest()
    assert replica.root() == gov.engine.root()
