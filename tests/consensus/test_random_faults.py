"""Seeded random faults against LocalCluster: applied histories never disagree.

A compact cousin of the simulator: messages are dropped, duplicated and reordered, nodes
crash and restart, logs are compacted, leadership moves and members change. After every
step, no two nodes may have applied different data at one index, and after healing the
cluster must make progress again.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from charter.consensus.errors import ConsensusError
from charter.consensus.local import LocalCluster
from charter.consensus.raft import Config
from charter.consensus.types import ConfChange, ConfChangeKind, Role

SEEDS = 40
STEPS = 250


def check_agreement(c: LocalCluster, truth: dict[int, bytes]) -> None:
    for nid, recs in c.applied.items():
        for idx, data in recs:
            seen = truth.setdefault(idx, data)
            assert seen == data, f"node {nid} applied {data!r} at {idx}, others {seen!r}"


def shake(c: LocalCluster, rng: random.Random) -> None:
    """Drop, duplicate or reorder some of the messages in flight."""
    wire = list(c.wire)
    out = []
    for m in wire:
        r = rng.random()
        if r < 0.08:
            continue
        out.append(m)
        if r > 0.95:
            out.append(m)
    if len(out) > 1 and rng.random() < 0.3:
        i, j = rng.randrange(len(out)), rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    c.wire.clear()
    c.wire.extend(out)


def deliver_some(c: LocalCluster, rng: random.Random) -> None:
    for nid in list(c.nodes):
        while c.handle_ready(nid):
            pass
    for _ in range(rng.randrange(1, 40)):
        if not c.deliver_one():
            break


@pytest.mark.parametrize("seed", range(SEEDS))
def test_random_faults_never_break_agreement(seed: int) -> None:
    rng = random.Random(seed)
    n = 5 if seed % 3 == 0 else 3

    def cfg(nid: int, r: random.Random) -> Config:
        return Config(
            nid,
            rng=r,
            election_ticks=8,
            max_entries_per_msg=4,
            max_inflight_msgs=4,
            snapshot_chunk_size=32,
            pre_vote=seed % 4 != 1,
            check_quorum=seed % 4 != 2,
        )

    c = LocalCluster(range(1, n + 1), seed=seed, config=cfg)
    truth: dict[int, bytes] = {}
    counter = 0
    next_id = n + 1
    for _ in range(STEPS):
        action = rng.random()
        live = sorted(c.nodes)
        if action < 0.35:
            lead = c.leader()
            if lead is not None:
                counter += 1
                with contextlib.suppress(ConsensusError):
                    lead.propose(b"s%d-%d" % (seed, counter))
        elif action < 0.40 and live:
            victim = rng.choice(live)
            if len(live) > n // 2 + 1:
                c.crash(victim)
        elif action < 0.47:
            for nid in c.storages:
                c.restart(nid)
        elif action < 0.50 and live:
            nid = rng.choice(live)
            if c.applied_index[nid] > c.storages[nid].snapshot_index():
                c.compact(nid)
        elif action < 0.53:
            lead = c.leader()
            if lead is not None:
                with contextlib.suppress(ConsensusError):
                    lead.transfer_leadership(rng.choice(sorted(lead.conf_state.voters)))
        elif action < 0.56:
            lead = c.leader()
            if lead is not None:
                conf = lead.conf_state
                try:
                    if conf.learners and rng.random() < 0.6:
                        lead.propose_conf_change(
                            ConfChange(ConfChangeKind.PROMOTE, min(conf.learners))
                        )
                    elif len(conf.voters) > 3 and rng.random() < 0.5:
                        lead.propose_conf_change(
                            ConfChange(ConfChangeKind.REMOVE, max(conf.voters))
                        )
                    elif next_id <= n + 2:
                        c.add_node(next_id)
                        lead.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, next_id))
                        next_id += 1
                except ConsensusError:
                    pass
        elif action < 0.60 and live:
            c.isolate(rng.choice(live))
        elif action < 0.66:
            c.heal()
        for nid in list(c.nodes):
            c.nodes[nid].tick()
        shake(c, rng)
        deliver_some(c, rng)
        check_agreement(c, truth)

    # Heal everything: the cluster must elect a leader and commit again.
    c.heal()
    for nid in c.storages:
        c.restart(nid)
    lead = None
    for _ in range(200):
        c.tick()
        lead = c.leader()
        if lead is not None and lead.commit_index == lead.last_index and lead.transferee is None:
            break
    assert lead is not None and lead.role is Role.LEADER
    idx = lead.propose(b"final")
    c.pump()
    c.tick(5)
    assert lead.commit_index >= idx
    check_agreement(c, truth)
    members = lead.conf_state.voters | lead.conf_state.learners
    for nid in members:
        assert c.applied[nid][-1] == (idx, b"final")
