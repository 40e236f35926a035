"""Raft over OCapN: a 3-member cluster in one process; prints one JSON object.

Run: ``python bench/bench_raft_transport.py [--scale 1.0]`` (a few seconds per netlayer
at scale 1). Each member has its own OCapN runtime; the cluster runs once over the memory
netlayer and once over TLS on loopback (keys generated here). 64 proposers keep 64
proposals of 100 bytes in flight on the leader; measured are committed proposals per
second (committed = applied on the leader), p50/p99 commit latency and the CPU all three
members spend per proposal; then the wire codec's encode/decode rates. Every phase is
bounded in count and by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.consensus.storage import MemoryStorage
from charter.consensus.types import ConfState, Entry, Message, MessageType, Role
from charter.node.raft_member import RaftMember
from charter.node.raft_transport import RaftNetworkConfig
from charter.node.raft_wire import decode_message, encode_message
from charter.ocapn.netlayer.base import Netlayer
from charter.ocapn.netlayer.memory import Switchboard
from charter.ocapn.netlayer.tls import TlsNetlayer
from charter.ocapn.runtime import Runtime

PHASE_TIMEOUT = 120.0
IN_FLIGHT = 64
PAYLOAD = 100
IDS = (1, 2, 3)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_cluster(make: Callable[[int], Netlayer], count: int) -> dict[str, Any]:
    runtimes = {nid: Runtime([make(nid)]) for nid in IDS}
    for rt in runtimes.values():
        await rt.start()
    config = RaftNetworkConfig(b"bench", {n: rt.location() for n, rt in runtimes.items()})
    applied = dict.fromkeys(IDS, 0)

    def applier(nid: int) -> Callable[[Entry], None]:
        def apply(e: Entry) -> None:
            applied[nid] = e.index

        return apply

    members = {
        nid: RaftMember(
            rt,
            config,
            nid,
            MemoryStorage.bootstrap(ConfState(frozenset(IDS))),
            applier(nid),
            rng=random.Random(nid),
            tick_interval=0.01,
        )
        for nid, rt in runtimes.items()
    }
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(m.run()) for m in members.values()]
            net = members[1].transport

            def leader() -> int | None:
                ls = [n for n, m in members.items() if m.driver.node.role is Role.LEADER]
                return ls[0] if len(ls) == 1 else None

            async with asyncio.timeout(PHASE_TIMEOUT):
                await net.wait_for(lambda: leader() is not None)
            lead = leader()
            assert lead is not None
            driver = members[lead].driver
            latencies: list[float] = []
            payload = os.urandom(PAYLOAD)
            warmup = min(200, count // 5)
            next_i = 0

            async def proposer() -> None:
                nonlocal next_i
                while next_i < count + warmup:
                    i = next_i
                    next_i += 1
                    t0 = time.perf_counter()
                    await driver.propose(payload)
                    if i >= warmup:
                        latencies.append(time.perf_counter() - t0)

            async with asyncio.timeout(PHASE_TIMEOUT):
                # warm up, then measure with IN_FLIGHT proposers
                workers = [asyncio.create_task(proposer()) for _ in range(IN_FLIGHT)]
                await net.wait_for(lambda: next_i >= warmup)
                start = time.perf_counter()
                cpu = time.process_time()
                await asyncio.gather(*workers)
                elapsed = time.perf_counter() - start
                cpu = time.process_time() - cpu
                target = driver.applied_index
                await net.wait_for(lambda: all(a >= target for a in applied.values()))
            stats = {n: m.transport.stats for n, m in members.items()}
            for t in tasks:
                t.cancel()
    finally:
        for rt in runtimes.values():
            await rt.close()
    batches = sum(s.batches_sent for s in stats.values())
    msgs = sum(s.messages_sent for s in stats.values())
    return {
        "proposals": len(latencies),
        "committed_per_s": round(len(latencies) / elapsed, 1),
        "latency_p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "seconds": round(elapsed, 3),
        "cpu_ms_per_proposal_all_members": round(cpu * 1000 / len(latencies), 4),
        "batches_sent": batches,
        "messages_per_batch": round(msgs / batches, 2) if batches else 0.0,
    }


def wire(scale: float) -> dict[str, Any]:
    """Encode/decode rates of the consensus wire codec for the two commonest messages."""
    entries = [Entry(7, 101 + i, data=os.urandom(PAYLOAD)) for i in range(64)]
    append = Message(MessageType.APPEND, 1, 2, 7, 7, 100, entries, commit=99)
    heartbeat = Message(MessageType.HEARTBEAT, 1, 2, 7, commit=99, context=b"r12")
    out: dict[str, Any] = {}
    for name, m, n in (("append_64x100B", append, 2000), ("heartbeat", heartbeat, 50000)):
        n = max(100, int(n * scale))
        data = encode_message(m)
        t0 = time.perf_counter()
        for _ in range(n):
            encode_message(m)
        t1 = time.perf_counter()
        for _ in range(n):
            decode_message(data)
        t2 = time.perf_counter()
        out[name] = {
            "bytes": len(data),
            "encode_per_s": round(n / (t1 - t0)),
            "decode_per_s": round(n / (t2 - t1)),
        }
    return out


async def main(scale: float) -> dict[str, Any]:
    count = max(1000, int(20000 * scale))
    board = Switchboard()
    memory = await run_cluster(lambda nid: board.netlayer(f"node-{nid}"), count)
    tls = await run_cluster(
        lambda nid: TlsNetlayer(Ed25519PrivateKey.generate(), "127.0.0.1", 0), count
    )
    return {
        "benchmark": "raft_transport",
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "cluster": "3 members, one process, one OCapN runtime each",
        "in_flight": IN_FLIGHT,
        "payload_bytes": PAYLOAD,
        "memory": memory,
        "tls": tls,
        "wire": wire(scale),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.scale))))
