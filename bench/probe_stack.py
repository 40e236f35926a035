"""A quick look at a real 3-process stack: idle CPU and ``wait=committed`` write latency.

Starts a stack the way ``bench_ledger.py`` does (``charter stack init``/``up``), samples
the three node processes' CPU while idle, then runs CLIENTS concurrent HTTP clients
(httpx, one connection each) writing WRITES unique keys each, half to the leader and half
to a follower, timing every request. With ``--profile SECONDS`` it also records a
``py-spy`` profile of the leader during the writes (py-spy must be on PATH; not a project
dependency). Prints one JSON object on stdout; progress goes to stderr.
Usage: ``probe_stack.py [CLIENTS] [WRITES] [--profile SECONDS]``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench_ledger import charter_cluster, cpu_ms, log

IDLE_S = 3.0
VALUE = json.dumps("v" * 98)


def _ms(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    return {
        "p50": round(statistics.median(s) * 1000, 1),
        "p90": round(s[int(len(s) * 0.9)] * 1000, 1),
        "p99": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1000, 1),
    }


async def _leader(urls: list[str]) -> int:
    async with httpx.AsyncClient(timeout=5) as c:
        for _ in range(100):
            for i, url in enumerate(urls):
                s = (await c.get(f"{url}/api/v1/status")).json()
                if s.get("role") == "leader":
                    return i
            await asyncio.sleep(0.1)  # polling a separate process: bounded by the loop count
    raise RuntimeError("no leader")


async def _client(url: str, name: str, n: int, out: list[float]) -> None:
    async with httpx.AsyncClient(timeout=10) as c:
        for i in range(n):
            t0 = time.perf_counter()
            r = await c.put(
                f"{url}/api/v1/tables/bench/{name}-{i}",
                params={"wait": "committed"},
                content=VALUE,
                headers={"content-type": "application/json"},
            )
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code} {r.text}")
            out.append(time.perf_counter() - t0)


async def _run(urls: list[str], clients: int, writes: int) -> dict[str, Any]:
    lead = await _leader(urls)
    follower = (lead + 1) % len(urls)
    at: dict[str, list[float]] = {"leader": [], "follower": []}
    # warm-up: sessions and connections
    await asyncio.gather(
        _client(urls[lead], "warm-l", 5, []), _client(urls[follower], "warm-f", 5, [])
    )
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for c in range(clients):
            where = "leader" if c % 2 == 0 else "follower"
            url = urls[lead if where == "leader" else follower]
            tg.create_task(_client(url, f"c{c}", writes, at[where]))
    wall = time.perf_counter() - t0
    total = len(at["leader"]) + len(at["follower"])
    return {
        "leader_index": lead,
        "writes": total,
        "writes_per_s": round(total / wall, 1),
        "wall_s": round(wall, 2),
        **{f"at_{k}_ms": _ms(v) for k, v in at.items() if v},
    }


def main(clients: int, writes: int, profile: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="charter-probe-stack-") as tmp:
        work = Path(tmp)
        with charter_cluster(work) as cluster:
            pids = cluster.pids
            c0 = cpu_ms(pids)
            time.sleep(IDLE_S)  # sampling the idle CPU over a fixed window is the point
            idle = (cpu_ms(pids) - c0) / IDLE_S
            spy = None
            if profile > 0:
                lead = asyncio.run(_leader(cluster.urls))
                tool = shutil.which("py-spy")
                if tool is None:
                    raise RuntimeError("py-spy is not on PATH")
                spy = subprocess.Popen(
                    [
                        tool,
                        "record",
                        "-p",
                        str(pids[lead]),
                        "-d",
                        str(int(profile)),
                        "-f",
                        "raw",
                        "-o",
                        "/tmp/charter-leader.prof",
                        "-r",
                        "200",
                        "--nonblocking",
                    ],
                    stdout=sys.stderr,
                    stderr=sys.stderr,
                )
            c1 = cpu_ms(pids)
            result = asyncio.run(_run(cluster.urls, clients, writes))
            used = cpu_ms(pids) - c1
            if spy is not None:
                spy.wait(timeout=profile + 30)
                log("profile written to /tmp/charter-leader.prof (py-spy raw format)")
    result["idle_cpu_ms_per_s"] = round(idle, 1)
    result["cpu_ms_per_write"] = round(used / max(1, result["writes"]), 2)
    result["clients"] = clients
    return result


if __name__ == "__main__":
    argv = sys.argv[1:]
    prof = 0.0
    if "--profile" in argv:
        i = argv.index("--profile")
        prof = float(argv[i + 1])
        del argv[i : i + 2]
    nums = [int(a) for a in argv]
    n_clients, n_writes = (nums + [4, 100][len(nums) :])[:2]
    print(json.dumps(main(n_clients, n_writes, prof)))
