"""Where a ``wait=committed`` write spends its time, in a 3-node ledger over TLS.

Runs ``LocalLedgerNetwork`` in one process with the stack's timing (50 ms ticks, a
100 ms signature interval) and times each write in two legs: submit -> its batch
applied at the answering node (propose, replicate, commit, apply), and applied ->
a signature covering it applied there (the signer's wait plus the signature's own
round). Clients write concurrently, half at the leader and half at a follower.
Prints one JSON object on stdout. Usage: ``probe_write_latency.py [CLIENTS] [WRITES]``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

from charter.ledger.engine.tx import Transaction
from charter.ledger.signatures import SignaturePolicy
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerService, LedgerSettings


def _ms(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    return {
        "p50": round(statistics.median(s) * 1000, 1),
        "p99": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1000, 1),
        "max": round(s[-1] * 1000, 1),
    }


async def _client(svc: LedgerService, name: str, n: int, legs: list[tuple[float, float]]) -> None:
    for i in range(n):
        t0 = time.perf_counter()
        p = svc._enqueue(svc_tx(name, i))
        await p.accepted
        t1 = time.perf_counter()
        await p.final
        t2 = time.perf_counter()
        legs.append((t1 - t0, t2 - t1))


def svc_tx(name: str, i: int) -> Transaction:
    return Transaction.of([("bench", f"{name}-{i}", b"v" * 100)])


async def main(clients: int, writes: int) -> dict[str, object]:
    settings = LedgerSettings(
        signature_policy=SignaturePolicy(every_tx=1000, every_ms=100),
        tick_interval=0.05,
        election_ticks=10,
        heartbeat_ticks=1,
    )
    async with LocalLedgerNetwork("tls", settings=settings) as net:
        leader = await net.elect()
        follower = next(n for n in net.ids if n != leader)
        # warm-up: sessions between the nodes and the first signature
        await net.service(follower).submit([("bench", "warm", b"w")], wait="committed")
        legs: list[tuple[float, float]] = []
        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for c in range(clients):
                svc = net.service(leader if c % 2 == 0 else follower)
                tg.create_task(_client(svc, f"c{c}", writes, legs))
        wall = time.perf_counter() - t0
        sigs = net.service(leader).signatures_proposed
    return {
        "clients": clients,
        "writes": len(legs),
        "writes_per_s": round(len(legs) / wall, 1),
        "total_ms": _ms([a + b for a, b in legs]),
        "submit_to_applied_ms": _ms([a for a, _ in legs]),
        "applied_to_signed_ms": _ms([b for _, b in legs]),
        "signatures_proposed": sigs,
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    clients, writes = (args + [4, 50][len(args) :])[:2]
    print(json.dumps(asyncio.run(main(clients, writes))))
