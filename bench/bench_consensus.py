"""Throughput of the Raft core: 3 pure cores wired in one thread, no faults.

Entries are proposed in batches on the leader; each round runs every node's Ready loop
(persist to MemoryStorage, deliver messages, apply) until all three nodes have applied
every entry. Prints one JSON document: entries/s ordered, committed and applied on all
three nodes, for several batch sizes; then proposals/s and latency through the asyncio
drivers with several numbers of concurrent proposers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import time
from collections import deque
from collections.abc import Callable

from charter.consensus.driver import MemoryNetwork, RaftDriver
from charter.consensus.raft import Config, RaftNode
from charter.consensus.storage import MemoryStorage
from charter.consensus.types import ConfState, Entry, Message, Role


def build(max_entries: int) -> tuple[dict[int, RaftNode], dict[int, MemoryStorage]]:
    ids = (1, 2, 3)
    storages = {i: MemoryStorage.bootstrap(ConfState(frozenset(ids))) for i in ids}
    nodes = {
        i: RaftNode(
            Config(
                i,
                rng=random.Random(i),
                max_entries_per_msg=max_entries,
                max_bytes_per_msg=max_entries * 256,
            ),
            storages[i],
        )
        for i in ids
    }
    return nodes, storages


def run(total: int, batch: int, size: int) -> dict[str, float]:
    nodes, storages = build(max(batch, 64))
    applied = dict.fromkeys(nodes, 0)
    wire: deque[Message] = deque()

    def settle() -> None:
        busy = True
        while busy:
            busy = False
            for nid, node in nodes.items():
                if node.has_ready():
                    busy = True
                    rd = node.ready()
                    storages[nid].persist(rd)
                    wire.extend(rd.messages)
                    applied[nid] += len(rd.committed_entries)
                    node.advance(rd)
            while wire:
                busy = True
                m = wire.popleft()
                nodes[m.to].step(m)

    lead = nodes[1]
    while lead.role is not Role.LEADER:
        lead.tick()
        settle()
    settle()
    base = dict(applied)
    payload = [bytes([i % 251]) * size for i in range(batch)]
    rounds = total // batch
    t0 = time.perf_counter()
    for _ in range(rounds):
        lead.propose_batch(payload)
        settle()
    elapsed = time.perf_counter() - t0
    done = rounds * batch
    for nid in nodes:
        assert applied[nid] - base[nid] == done, (nid, applied[nid] - base[nid], done)
    return {
        "batch": batch,
        "entries": done,
        "seconds": round(elapsed, 4),
        "entries_per_s": round(done / elapsed),
        "mb_per_s": round(done * size / elapsed / 1e6, 2),
    }


async def run_drivers(total: int, concurrency: int, size: int) -> dict[str, float]:
    """Proposals/s through 3 asyncio drivers, ``concurrency`` proposals outstanding."""
    ids = [1, 2, 3]
    net = MemoryNetwork()
    applied = dict.fromkeys(ids, 0)

    def applier(nid: int) -> Callable[[Entry], None]:
        def apply(e: Entry) -> None:
            applied[nid] += 1

        return apply

    drivers = [
        RaftDriver(
            Config(i, rng=random.Random(i)),
            MemoryStorage.bootstrap(ConfState(frozenset(ids))),
            net,
            applier(i),
            tick_interval=0.01,
        )
        for i in ids
    ]
    payload = b"p" * size
    latencies: list[float] = []
    async with asyncio.TaskGroup() as tg:
        for d in drivers:
            tg.create_task(d.run())
        async with asyncio.timeout(30):
            await net.wait_for(lambda: any(d.node.role is Role.LEADER for d in drivers))
        lead = next(d for d in drivers if d.node.role is Role.LEADER)
        queue = iter(range(total))

        async def client() -> None:
            for _ in queue:
                t = time.perf_counter()
                await lead.propose(payload)
                latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        async with asyncio.timeout(120), asyncio.TaskGroup() as clients:
            for _ in range(concurrency):
                clients.create_task(client())
        elapsed = time.perf_counter() - t0
        for d in drivers:
            d.stop()
    latencies.sort()
    return {
        "concurrency": concurrency,
        "proposals": total,
        "seconds": round(elapsed, 4),
        "proposals_per_s": round(total / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--batches", default="1,10,100,1000,5000")
    ap.add_argument("--driver-proposals", type=int, default=20_000)
    ap.add_argument("--concurrency", default="1,64,512")
    args = ap.parse_args()
    results = []
    for b in (int(x) for x in args.batches.split(",")):
        n = args.entries if b >= 100 else min(args.entries, 2_000 * b)
        results.append(run(n, b, args.size))
    driver = []
    for conc in (int(x) for x in args.concurrency.split(",")):
        n = args.driver_proposals if conc > 1 else min(args.driver_proposals, 2_000)
        driver.append(asyncio.run(run_drivers(n, conc, args.size)))
    print(
        json.dumps(
            {
                "benchmark": "consensus.core.3-nodes.no-faults",
                "entry_bytes": args.size,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "results": results,
                "driver": {
                    "description": "3 RaftDriver over MemoryNetwork, one process, "
                    "propose() awaited until applied on the leader",
                    "results": driver,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
