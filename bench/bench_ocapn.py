"""OCapN over TLS between two processes on loopback; prints one JSON object.

Run: ``python bench/bench_ocapn.py [--scale 1.0] [--netlayer tls]`` (about ten seconds
at scale 1; ``--netlayer unix`` or ``tcp-testing-only`` shows what TLS costs).
The server is the conformance test peer (``python -m charter.ocapn.testpeer
--netlayer tls``) in its own process; this process is the client runtime. Measured:

* fire-and-forget deliveries per second to the echo object (``op:deliver`` with no
  answer), timed until a final call behind them has been answered, so every one of
  them has been delivered;
* request/response round trips per second with 64 calls in flight;
* latency of a single call (p50/p99), and of a chain of three pipelined calls
  (fetch a factory, make a car, drive it), which should cost one round trip.

Every phase is bounded in count and by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.codec.syrup import Symbol
from charter.ocapn.locator import PeerLocation, SturdyRef
from charter.ocapn.netlayer.base import Netlayer
from charter.ocapn.netlayer.tcp_testing import TcpTestingNetlayer
from charter.ocapn.netlayer.tls import TlsNetlayer
from charter.ocapn.netlayer.unix import UnixNetlayer
from charter.ocapn.runtime import RemoteRef, Runtime
from charter.ocapn.testpeer import CAR_FACTORY_BUILDER_SWISS, ECHO_SWISS

PHASE_TIMEOUT = 60.0
IN_FLIGHT = 64


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fire_and_forget(echo: RemoteRef, count: int) -> float:
    batch = 512
    start = time.perf_counter()
    sent = 0
    while sent < count:
        for i in range(min(batch, count - sent)):
            echo.send_only(sent + i)
        sent += batch
        await asyncio.sleep(0)  # let the session flush this batch as one write
    await echo.send("done")  # in order after every delivery above
    return count / (time.perf_counter() - start)


async def round_trips(echo: RemoteRef, count: int, in_flight: int) -> float:
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await echo.send(remaining)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(in_flight):
            tg.create_task(worker())
    return count / (time.perf_counter() - start)


async def latencies(echo: RemoteRef, count: int) -> list[float]:
    samples = []
    for i in range(count):
        t = time.perf_counter()
        await echo.send(i)
        samples.append((time.perf_counter() - t) * 1000)
    return samples


async def chain_latencies(builder: RemoteRef, count: int) -> list[float]:
    spec = [Symbol("red"), Symbol("zoomracer")]
    samples = []
    for _ in range(count):
        t = time.perf_counter()
        await builder.send().send(spec).send()
        samples.append((time.perf_counter() - t) * 1000)
    return samples


async def start_server(
    netlayer: str = "tls", socket_path: str | None = None
) -> tuple[asyncio.subprocess.Process, PeerLocation]:
    extra = ["--socket", socket_path] if socket_path else []
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "charter.ocapn.testpeer",
        "--netlayer",
        netlayer,
        *extra,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(30):
        line = await process.stdout.readline()
    if not line:
        raise RuntimeError("the server process did not start")
    return process, PeerLocation.from_uri(line.decode().strip())


def client_netlayer(kind: str, tmp: str) -> Netlayer:
    if kind == "tls":
        return TlsNetlayer(Ed25519PrivateKey.generate())
    if kind == "unix":
        return UnixNetlayer(os.path.join(tmp, "client.sock"))
    return TcpTestingNetlayer()


async def run(scale: float, netlayer: str = "tls") -> dict[str, Any]:
    n_ff = max(1000, int(100_000 * scale))
    n_rt = max(1000, int(30_000 * scale))
    n_lat = max(100, int(2_000 * scale))
    n_chain = max(50, int(500 * scale))
    tmp = tempfile.mkdtemp(prefix="charter-bench-")
    server_socket = os.path.join(tmp, "server.sock") if netlayer == "unix" else None
    process, location = await start_server(netlayer, server_socket)
    try:
        async with Runtime([client_netlayer(netlayer, tmp)]) as runtime:
            async with asyncio.timeout(PHASE_TIMEOUT):
                echo = await runtime.enliven(SturdyRef(location, ECHO_SWISS))
                builder = await runtime.enliven(SturdyRef(location, CAR_FACTORY_BUILDER_SWISS))
                await latencies(echo, 200)  # warm up both processes
            async with asyncio.timeout(PHASE_TIMEOUT):
                ff = await fire_and_forget(echo, n_ff)
            async with asyncio.timeout(PHASE_TIMEOUT):
                rt = await round_trips(echo, n_rt, IN_FLIGHT)
            async with asyncio.timeout(PHASE_TIMEOUT):
                lat = await latencies(echo, n_lat)
            async with asyncio.timeout(PHASE_TIMEOUT):
                chain = await chain_latencies(builder, n_chain)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
    return {
        "benchmark": "ocapn",
        "netlayer": netlayer,
        "processes": 2,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "fire_and_forget": {"count": n_ff, "per_second": round(ff)},
        "round_trips": {"count": n_rt, "in_flight": IN_FLIGHT, "per_second": round(rt)},
        "single_call_latency_ms": {
            "count": n_lat,
            "p50": round(statistics.median(lat), 3),
            "p99": round(percentile(lat, 0.99), 3),
        },
        "pipelined_chain_of_3_latency_ms": {
            "count": n_chain,
            "p50": round(statistics.median(chain), 3),
            "p99": round(percentile(chain, 0.99), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count")
    parser.add_argument(
        "--netlayer",
        choices=["tls", "unix", "tcp-testing-only"],
        default="tls",
        help="transport between the two processes (tls is the one that matters)",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.scale, args.netlayer))))


if __name__ == "__main__":
    main()
