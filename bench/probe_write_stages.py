"""Where one ``wait=committed`` write spends its time, stage by stage, in a 3-node ledger.

Runs ``LocalLedgerNetwork`` over TLS in one process with the stack's timing (50 ms ticks)
and, with ``--durable``, each member on ``DurableRaftStorage`` in a temporary directory
(fsync on, as in a node process). Clients write concurrently, half at the leader and half
at a follower. Every stage of each write is timed from its submission:

    batched       the batch holding it was signed and handed to delivery
    proposed      the leader appended the batch to its log (``RaftNode.propose``)
    leader_durable    the leader's persist of that entry returned
    follower_durable  the first follower's persist of that entry returned
    acked         the leader received the first follower's acknowledgement of it
    committed     the leader's commit index reached it
    leader_applied    the leader applied it
    applied       the answering node applied it (``wait=accepted`` returns here)
    sig_proposed  the leader proposed the first signature after it
    sig_committed the leader's commit index reached that signature
    sig_applied   the answering node applied that signature
    answered      ``wait=committed`` returned

Each stage is reported as p50/p99 of the time since submission, split by where the write
was submitted (leader or follower). Instrumentation wraps methods on the instances only.
A tick length far from the stack's (``--tick-ms 500``) shows whether any stage waits for a
tick; ``--components`` runs every member with the node's default components (as a node
process does). Prints one JSON object.
Usage: ``probe_write_stages.py [--durable] [--components] [--tick-ms MS] [CLIENTS] [WRITES]``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from charter.consensus.storage import MemoryStorage, RaftStorage
from charter.consensus.types import ConfState, Entry, Message, MessageType, Ready
from charter.ledger.engine.tx import Transaction
from charter.ledger.raft_storage import DurableRaftStorage
from charter.ledger.signatures import SignaturePolicy
from charter.node.components import default_factories
from charter.node.ledger_local import LocalLedgerNetwork, LocalMember
from charter.node.ledger_service import LedgerService, LedgerSettings

STAGES = (
    "batched",
    "proposed",
    "leader_durable",
    "follower_durable",
    "acked",
    "committed",
    "leader_applied",
    "applied",
    "sig_proposed",
    "sig_committed",
    "sig_applied",
    "answered",
)


class _TracedMemory(MemoryStorage, blocking_io=False):
    """MemoryStorage whose ``persist`` the probe may wrap (no ``__slots__``)."""


class _TracedDurable(DurableRaftStorage):
    """DurableRaftStorage whose ``persist`` the probe may wrap (no ``__slots__``)."""


class _ProbeNetwork(LocalLedgerNetwork):
    """Members on traceable storage: on disk under ``root``, or in memory (``root`` None)."""

    def __init__(self, root: Path | None, **kw: Any) -> None:
        super().__init__(**kw)
        self._root = root

    def _service(self, m: LocalMember, storage: RaftStorage) -> LedgerService:
        if type(storage) is MemoryStorage:
            conf = ConfState(frozenset(self.ids))
            if self._root is None:
                storage = _TracedMemory.bootstrap(conf)
            else:
                storage = _TracedDurable(self._root / m.name, bootstrap=conf)
        return super()._service(m, storage)


class Trace:
    """Times of events per Raft index, per node."""

    def __init__(self) -> None:
        self.proposed: dict[int, float] = {}
        self.index_of: dict[bytes, int] = {}
        self.signatures: list[int] = []
        self.sig_bytes: set[bytes] = set()
        self.durable: dict[int, dict[int, float]] = defaultdict(dict)
        self.acked: dict[int, float] = {}
        self.committed: dict[int, float] = {}
        self.applied: dict[int, dict[int, float]] = defaultdict(dict)
        self.leader = 0

    def first_after(self, idx: int, seen: dict[int, float], upto: int) -> float | None:
        """Earliest time at which some index >= ``idx`` reached this stage (monotone stages
        are recorded only at their high-water marks)."""
        best = None
        for i, t in seen.items():
            if i >= idx and (best is None or t < best):
                best = t
        return best


def _instrument(net: LocalLedgerNetwork, trace: Trace, leader: int) -> None:
    now = time.perf_counter
    trace.leader = leader
    for nid in net.ids:
        svc = net.service(nid)
        driver = svc.driver
        node = driver.node
        storage = driver.storage

        orig_persist = storage.persist

        def persist(rd: Ready, _nid: int = nid, _orig: Callable[[Ready], None] = orig_persist):
            _orig(rd)
            if rd.entries:
                trace.durable[_nid][rd.entries[-1].index] = now()

        storage.persist = persist  # type: ignore[method-assign]

        orig_apply = driver._apply

        def apply(e: Entry, _nid: int = nid, _orig: Callable[[Entry], None] = orig_apply) -> None:
            _orig(e)
            trace.applied[_nid][e.index] = now()

        driver._apply = apply

        if nid != leader:
            continue
        orig_propose = node.propose

        def propose(data: bytes, _orig: Callable[[bytes], int] = orig_propose) -> int:
            idx = _orig(data)
            trace.proposed[idx] = now()
            trace.index_of[data] = idx
            if data in trace.sig_bytes:
                trace.signatures.append(idx)
            return idx

        node.propose = propose  # type: ignore[method-assign]

        orig_step = node.step

        def step(m: Message, _node: Any = node, _orig: Callable[[Message], None] = orig_step):
            before = _node.commit_index
            _orig(m)
            t = now()
            ack = m.type is MessageType.APPEND_RESP and not m.reject
            if ack and m.index not in trace.acked:
                trace.acked[m.index] = t
            if _node.commit_index != before:
                trace.committed[_node.commit_index] = t

        node.step = step  # type: ignore[method-assign]

        orig_advance = node.advance

        def advance(rd: Ready, _node: Any = node, _orig: Callable[[Ready], None] = orig_advance):
            before = _node.commit_index
            _orig(rd)
            if _node.commit_index != before:
                trace.committed[_node.commit_index] = now()

        node.advance = advance  # type: ignore[method-assign]

        engine = svc.engine
        orig_sig = engine.make_signature

        def make_signature(*a: Any, _orig: Callable[..., bytes] = orig_sig) -> bytes:
            entry = _orig(*a)
            trace.sig_bytes.add(entry)
            return entry

        engine.make_signature = make_signature  # type: ignore[method-assign]


class Write:
    __slots__ = ("answered", "at_leader", "batched", "entry", "node", "submitted")

    def __init__(self, node: int, at_leader: bool) -> None:
        self.node = node
        self.at_leader = at_leader
        self.submitted = 0.0
        self.entry = b""
        self.batched = 0.0
        self.answered = 0.0


async def _client(
    svc: LedgerService,
    w_node: int,
    at_leader: bool,
    name: str,
    n: int,
    out: list[Write],
    batches: dict[int, tuple[bytes, float]],
) -> None:
    for i in range(n):
        w = Write(w_node, at_leader)
        w.submitted = time.perf_counter()
        p = svc._enqueue(Transaction.of([("bench", f"{name}-{i}", b"v" * 100)]))
        await p.final
        w.answered = time.perf_counter()
        w.entry, w.batched = batches.pop(id(p))
        out.append(w)


def _wire_batches(svc: LedgerService, batches: dict[int, tuple[bytes, float]]) -> None:
    orig = svc._deliver

    async def deliver(entry: bytes, key: tuple[str, int]) -> None:
        t = time.perf_counter()
        for p in svc._batches.get(key, []):
            batches[id(p)] = (entry, t)
        await orig(entry, key)

    svc._deliver = deliver  # type: ignore[method-assign]


def _stages(w: Write, trace: Trace) -> dict[str, float]:
    t0 = w.submitted
    idx = trace.index_of[w.entry]
    leader = trace.leader
    followers = [n for n in trace.durable if n != leader]
    out: dict[str, float | None] = {"batched": w.batched, "proposed": trace.proposed[idx]}
    out["leader_durable"] = trace.first_after(idx, trace.durable[leader], 0)
    fd = [trace.first_after(idx, trace.durable[f], 0) for f in followers]
    out["follower_durable"] = min((t for t in fd if t is not None), default=None)
    out["acked"] = trace.first_after(idx, trace.acked, 0)
    out["committed"] = trace.first_after(idx, trace.committed, 0)
    out["leader_applied"] = trace.applied[leader].get(idx)
    out["applied"] = trace.applied[w.node].get(idx)
    # the first signature the leader proposed after it applied this entry covers it
    lapplied = trace.applied[leader].get(idx, float("inf"))
    sig = next((s for s in trace.signatures if trace.proposed[s] >= lapplied), None)
    if sig is not None:
        out["sig_proposed"] = trace.proposed[sig]
        out["sig_committed"] = trace.first_after(sig, trace.committed, 0)
        out["sig_applied"] = trace.applied[w.node].get(sig)
    out["answered"] = w.answered
    return {k: (v - t0) for k, v in out.items() if v is not None}


def _summary(values: list[float]) -> list[float]:
    """[p50, p99] in milliseconds."""
    s = sorted(values)
    return [
        round(statistics.median(s) * 1000, 2),
        round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1000, 2),
    ]


async def main(
    clients: int, writes: int, durable: bool, tick_ms: int = 50, components: bool = False
) -> dict[str, object]:
    settings = LedgerSettings(
        signature_policy=SignaturePolicy(every_tx=1000, every_ms=1000),
        tick_interval=tick_ms / 1000,
        election_ticks=10,
        heartbeat_ticks=1,
    )
    with tempfile.TemporaryDirectory(prefix="charter-probe-") as tmp:
        factories = default_factories() if components else []
        net = _ProbeNetwork(
            Path(tmp) / "raft" if durable else None,
            netlayers="tls",
            settings=settings,
            components=factories,
            data_root=Path(tmp) / "data" if components else None,
        )
        async with net:
            leader = await net.elect()
            follower = next(n for n in net.ids if n != leader)
            await net.service(follower).submit([("bench", "warm", b"w")], wait="committed")
            await net.service(leader).submit([("bench", "warm2", b"w")], wait="committed")
            trace = Trace()
            _instrument(net, trace, leader)
            batches: dict[int, tuple[bytes, float]] = {}
            for nid in net.ids:
                _wire_batches(net.service(nid), batches)
            done: list[Write] = []
            t0 = time.perf_counter()
            async with asyncio.TaskGroup() as tg:
                for c in range(clients):
                    nid = leader if c % 2 == 0 else follower
                    tg.create_task(
                        _client(
                            net.service(nid), nid, nid == leader, f"c{c}", writes, done, batches
                        )
                    )
            wall = time.perf_counter() - t0
            per: dict[str, dict[str, list[float]]] = {
                "leader": defaultdict(list),
                "follower": defaultdict(list),
            }
            for w in done:
                where = "leader" if w.at_leader else "follower"
                for k, v in _stages(w, trace).items():
                    per[where][k].append(v)
            sigs = len(trace.signatures)
    result: dict[str, object] = {
        "storage": "durable" if durable else "memory",
        "tick_ms": tick_ms,
        "components": components,
        "clients": clients,
        "writes": len(done),
        "writes_per_s": round(len(done) / wall, 1),
        "signatures": sigs,
    }
    for where, stages in per.items():
        result[f"at_{where}_p50_p99_ms"] = {k: _summary(stages[k]) for k in STAGES if stages.get(k)}
    return result


if __name__ == "__main__":
    argv = sys.argv[1:]
    durable_flag = "--durable" in argv
    with_components = "--components" in argv
    tick = 50
    if "--tick-ms" in argv:
        i = argv.index("--tick-ms")
        tick = int(argv[i + 1])
        del argv[i : i + 2]
    nums = [int(a) for a in argv if not a.startswith("--")]
    n_clients, n_writes = (nums + [4, 50][len(nums) :])[:2]
    print(json.dumps(asyncio.run(main(n_clients, n_writes, durable_flag, tick, with_components))))
