"""Token transfers committed per second on a 3-member loopback stack of node processes.

``charter stack init/up`` starts three real node processes (Raft over OCapN/TLS,
each with the tokens component). Every member creates nothing but mints to its own
account, then each node is driven by ``--concurrency`` requests in flight to
``POST /api/v1/tokens/transfers/batch?wait=committed``, each carrying ``--batch``
transfers from the member's account to its users' accounts (every transfer is its own
command and transaction, decided by every node's tokens handler). Only a member's own
node may move its tokens, so each node submits its own member's transfers.

Each level of ``--concurrency`` (default 4, then 8 requests in flight per node) gets
its own warm-up and measured window, which counts transfers answered ``Committed``;
latency is per request (submit -> every transfer in it committed), p50/p99. At 4 in
flight the nodes are not yet busy all the time (a request waits for two consensus
rounds: its batch's and the signature's); the level with the highest rate is reported
as ``saturation`` and its rate is the headline ``transfers_per_s``. At the end every
node must report the same balances and total supply = minted (conservation).

Prints one JSON object on stdout; progress goes to stderr.
Run: ``python bench/bench_tokens.py [--seconds 15] [--batch 200] [--concurrency 4,8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from stackrun import BenchError, cpu_ms, stack

STACK = "tokbench"
REQUEST_TIMEOUT_S = 60.0
POOL = "bench"


def log(message: str) -> None:
    print(f"[bench-tokens] {message}", file=sys.stderr, flush=True)


async def committed(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
    r = await client.post(url, json=body, params={"wait": "committed"}, timeout=REQUEST_TIMEOUT_S)
    if r.status_code != 200 or r.json().get("status") != "Committed":
        raise BenchError(f"POST {url}: {r.status_code} {r.text[:300]}")


async def setup(client: httpx.AsyncClient, nodes: list[tuple[str, str]], supply: int) -> None:
    first = nodes[0][1]
    pool = {"name": POOL, "type": "fungible", "decimals": 2, "mint_policy": "any"}
    await committed(client, f"{first}/api/v1/tokens/pools", pool)
    for member, url in nodes:
        mint = {"pool": POOL, "to": member, "amount": str(supply)}
        await committed(client, f"{url}/api/v1/tokens/mint", mint)


class Load:
    def __init__(self) -> None:
        self.measuring = False
        self.stop = False
        self.committed = 0
        self.invalid = 0
        self.errors = 0
        self.latencies: list[float] = []


async def driver(
    client: httpx.AsyncClient, member: str, url: str, worker: int, batch: int, load: Load
) -> None:
    n = 0
    endpoint = f"{url}/api/v1/tokens/transfers/batch"
    while not load.stop:
        transfers = [
            {
                "pool": POOL,
                "from": member,
                "to": f"{member}/u{worker}-{(n + i) % 997}",
                "amount": "1",
            }
            for i in range(batch)
        ]
        n += batch
        started = time.perf_counter()
        try:
            r = await client.post(
                endpoint,
                json={"transfers": transfers},
                params={"wait": "committed"},
                timeout=REQUEST_TIMEOUT_S,
            )
        except httpx.HTTPError:
            load.errors += 1
            continue
        took = time.perf_counter() - started
        if r.status_code != 200:
            load.errors += 1
            continue
        results = r.json()["results"]
        if load.measuring:
            ok = sum(1 for x in results if x["status"] == "Committed")
            load.committed += ok
            load.invalid += len(results) - ok
            load.latencies.append(took)


async def caught_up(client: httpx.AsyncClient, urls: list[str], within: float = 15.0) -> None:
    """Every node has applied the same number of leaves (load has stopped)."""
    async with asyncio.timeout(within):
        while True:
            seqnos = {(await client.get(f"{u}/api/v1/status")).json()["last_seqno"] for u in urls}
            if len(seqnos) == 1:
                return
            await asyncio.sleep(0.1)


async def all_balances(client: httpx.AsyncClient, url: str) -> dict[str, int]:
    out: dict[str, int] = {}
    page = 10000
    while True:
        params = {"pool": POOL, "limit": page, "after": len(out)}
        rows = (await client.get(f"{url}/api/v1/tokens/balances", params=params)).json()
        out.update((r["account"], int(r["balance"])) for r in rows)
        if len(rows) < page:
            return out


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def measure(
    client: httpx.AsyncClient,
    nodes: list[tuple[str, str]],
    pids: list[int],
    args: argparse.Namespace,
    concurrency: int,
) -> dict[str, Any]:
    """One offered load: ``concurrency`` requests in flight per node, warm-up, window."""
    load = Load()
    tasks = [
        asyncio.create_task(driver(client, member, url, w, args.batch, load))
        for member, url in nodes
        for w in range(concurrency)
    ]
    log(f"{concurrency} in flight per node: warm-up {args.warmup:g} s")
    await asyncio.sleep(args.warmup)
    load.measuring = True
    cpu_before = cpu_ms(pids)
    started = time.perf_counter()
    log(f"{concurrency} in flight per node: measuring {args.seconds:g} s")
    await asyncio.sleep(args.seconds)
    load.measuring = False
    elapsed = time.perf_counter() - started
    cpu_used = cpu_ms(pids) - cpu_before
    load.stop = True
    async with asyncio.timeout(REQUEST_TIMEOUT_S + 5):
        await asyncio.gather(*tasks)
    return {
        "requests_in_flight_per_node": concurrency,
        "seconds": round(elapsed, 2),
        "transfers_committed": load.committed,
        "transfers_invalid": load.invalid,
        "request_errors": load.errors,
        "transfers_per_s": round(load.committed / elapsed, 1),
        "request_latency_ms": {
            "p50": round(1000 * (percentile(load.latencies, 50) or 0), 1),
            "p99": round(1000 * (percentile(load.latencies, 99) or 0), 1),
            "requests": len(load.latencies),
        },
        "cpu_ms_per_transfer": round(cpu_used / load.committed, 3) if load.committed else None,
    }


async def run(
    nodes: list[tuple[str, str]], pids: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits) as client:
        supply = 10**30
        await setup(client, nodes, supply)
        levels = [await measure(client, nodes, pids, args, c) for c in args.concurrency]
        # conservation and agreement: every node, same balances, total = minted
        await caught_up(client, [url for _, url in nodes])
        views = [await all_balances(client, url) for _, url in nodes]
        agree = all(v == views[0] for v in views)
        conserved = sum(views[0].values()) == supply * len(nodes)
    best = max(levels, key=lambda level: level["transfers_per_s"])
    return {
        "benchmark": "tokens",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "stack": {"members": len(nodes), "transport": "OCapN over TLS 1.3, loopback"},
        "load": {
            "endpoint": "POST /api/v1/tokens/transfers/batch?wait=committed",
            "transfers_per_request": args.batch,
            "requests_in_flight_per_node": args.concurrency,
            "warmup_s": args.warmup,
            "seconds": args.seconds,
        },
        "levels": levels,
        "saturation": {
            "requests_in_flight_per_node": best["requests_in_flight_per_node"],
            "transfers_per_s": best["transfers_per_s"],
            "request_latency_ms": best["request_latency_ms"],
            "cpu_ms_per_transfer": best["cpu_ms_per_transfer"],
        },
        "transfers_per_s": best["transfers_per_s"],
        "nodes_agree": agree,
        "supply_conserved": conserved,
        "target_transfers_per_s": 5000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument(
        "--concurrency",
        default="4,8",
        help="requests in flight per node, one measured window per comma-separated level",
    )
    args = parser.parse_args()
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",")]
    except ValueError:
        parser.error("--concurrency is a comma-separated list of integers")
    if (
        not 1 <= args.seconds <= 300
        or not 1 <= args.batch <= 5000
        or not all(1 <= c <= 32 for c in args.concurrency)
    ):
        parser.error("--seconds 1..300, --batch 1..5000, --concurrency 1..32 each")
    with (
        tempfile.TemporaryDirectory(prefix="charter-bench-tokens-") as tmp,
        stack(Path(tmp), STACK, "bench-tokens") as (nodes, pids),
    ):
        result = asyncio.run(run(nodes, pids, args))
    print(json.dumps(result, indent=2))
    if not (result["nodes_agree"] and result["supply_conserved"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
