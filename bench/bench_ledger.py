"""Charter's 3-node ledger against a 3-member etcd cluster, both driven by wrk.

Each system runs alone on loopback (the other is down) so neither steals the two
cores from the other. Per load (4 and 64 connections in total) a short warm-up
runs first, then a measured window: three wrk processes, one per node or member,
each with as many threads as connections, run the Lua script in ``bench/ledger/``.
It writes unique keys with ~100-byte values and times every request itself
(wrk's own percentiles are corrected for coordinated omission with synthetic
samples; these are the real ones). CPU per write is the utime+stime growth of the
three server processes over the window divided by the successful writes.

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from charter.cli.stack import open_stack  # reads CHARTER_HOME when called
from stackrun import BenchError, charter_cli

LUA_SCRIPT = Path(__file__).resolve().parent / "ledger" / "writes.lua"
LOADS = (4, 64)
WARMUP_S = 3
MEASURE_S = 12
WRK_GRACE_S = 20.0  # wrk must end this long after its duration, or it is killed
READY_TIMEOUT_S = 60.0
IDLE_S = 3.0  # window over which the idle cluster's CPU use is sampled
STACK = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench-ledger] {message}", file=sys.stderr, flush=True)


# -- tools ------------------------------------------------------------------------


def ensure_tools() -> None:
    """Install wrk and etcd-server from the system's package sources if missing."""
    if shutil.which("wrk") and shutil.which("etcd"):
        return
    if shutil.which("apt-get") is None:
        raise BenchError("wrk or etcd is missing and apt-get is not available to install them")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    for step in (["apt-get", "update"], ["apt-get", "install", "-y", "wrk", "etcd-server"]):
        log("running " + " ".join(step))
        done = subprocess.run(
            sudo + step, stdout=sys.stderr, stderr=sys.stderr, timeout=600, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"{' '.join(step)} failed (status {done.returncode})")
    if not (shutil.which("wrk") and shutil.which("etcd")):
        raise BenchError("wrk or etcd still missing after apt-get install wrk etcd-server")


def tool_version(command: Sequence[str]) -> str:
    done = subprocess.run(list(command), capture_output=True, text=True, timeout=10, check=False)
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


# -- ports and processes ------------------------------------------------------------


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(width: int) -> int:
    """A base port such that base..base+width-1 are all free on loopback."""
    for base in range(21000, 60000 - width, width + 7):
        if all(_bindable(p) for p in range(base, base + width)):
            return base
    raise BenchError(f"no block of {width} free loopback ports")


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def cpu_ms(pids: Sequence[int]) -> float:
    return sum(cpu_ticks(p) for p in pids) * 1000.0 / CLK_TCK


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait(timeout=timeout)


# -- the two clusters -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cluster:
    system: str
    urls: list[str]  # one base URL per node or member
    pids: list[int]


@contextlib.contextmanager
def charter_cluster(work: Path) -> Iterator[Cluster]:
    home = work / "charter-home"
    base = free_port_block(23)
    log(f"charter: stack init (3 members, ports {base}..{base + 22})")
    charter_cli(["stack", "init", STACK, "--members", "3", "--base-port", str(base)], home, 60)
    os.environ["CHARTER_HOME"] = str(home)
    _, nodes = open_stack(STACK)
    try:
        log("charter: stack up")
        charter_cli(["stack", "up", STACK, "--timeout", str(READY_TIMEOUT_S)], home, 90)
        pids = [n.pid() for n in nodes]
        if any(p is None for p in pids):
            raise BenchError("a Charter node wrote no pid file")
        yield Cluster("charter", [n.entry.api_url for n in nodes], [p for p in pids if p])
    finally:
        log("charter: stack down")
        pids_now = [p for n in nodes if (p := n.pid()) is not None]
        with contextlib.suppress(Exception):
            charter_cli(["stack", "down", STACK, "--timeout", "5"], home, 30)
        for pid in pids_now:
            kill_group(pid)


@contextlib.contextmanager
def etcd_cluster(work: Path) -> Iterator[Cluster]:
    base = free_port_block(6)
    names = ["etcd1", "etcd2", "etcd3"]
    client = [base + 2 * i for i in range(3)]
    peer = [base + 2 * i + 1 for i in range(3)]
    initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in zip(names, peer, strict=True))
    procs: list[subprocess.Popen[bytes]] = []
    log(f"etcd: starting 3 members (ports {base}..{base + 5})")
    try:
        for name, c_port, p_port in zip(names, client, peer, strict=True):
            data = work / name
            data.mkdir()
            with open(work / f"{name}.log", "ab") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            "etcd",
                            "--name",
                            name,
                            "--data-dir",
                            str(data),
                            "--listen-client-urls",
                            f"http://127.0.0.1:{c_port}",
                            "--advertise-client-urls",
                            f"http://127.0.0.1:{c_port}",
                            "--listen-peer-urls",
                            f"http://127.0.0.1:{p_port}",
                            "--initial-advertise-peer-urls",
                            f"http://127.0.0.1:{p_port}",
                            "--initial-cluster",
                            initial,
                            "--initial-cluster-token",
                            "charter-bench",
                            "--initial-cluster-state",
                            "new",
                            "--log-level",
                            "warn",
                        ],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        urls = [f"http://127.0.0.1:{p}" for p in client]
        wait_etcd_healthy(urls, procs)
        yield Cluster("etcd", urls, [p.pid for p in procs])
    finally:
        log("etcd: stopping")
        for proc in procs:
            stop_group(proc)


def wait_etcd_healthy(urls: Sequence[str], procs: Sequence[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while True:
            healthy = 0
            for url, proc in zip(urls, procs, strict=True):
                if proc.poll() is not None:
                    raise BenchError(f"etcd member at {url} exited with {proc.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    answer = client.get(f"{url}/health")
                    if answer.status_code == 200 and answer.json().get("health") == "true":
                        healthy += 1
            if healthy == len(urls):
                return
            if time.monotonic() >= deadline:
                raise BenchError(f"etcd not healthy within {READY_TIMEOUT_S:g} s")
            time.sleep(0.1)


def smoke_write(cluster: Cluster) -> None:
    """One write per node before any load, so a wrong URL fails loudly, not as errors."""
    with httpx.Client(timeout=10.0) as client:
        for i, url in enumerate(cluster.urls):
            key = f"smoke-{i}"
            if cluster.system == "etcd":
                body = {
                    "key": base64.b64encode(key.encode()).decode(),
                    "value": base64.b64encode(b"x" * 100).decode(),
                }
                answer = client.post(f"{url}/v3/kv/put", json=body)
            else:
                answer = client.put(
                    f"{url}/api/v1/tables/bench/{key}",
                    params={"wait": "committed"},
                    json="x" * 100,
                )
            if answer.status_code != 200:
                raise BenchError(
                    f"{cluster.system} write to {url} answered {answer.status_code}: "
                    f"{answer.text[:200]}"
                )


# -- wrk -------------------------------------------------------------------------------


@dataclass(slots=True)
class WrkResult:
    duration_s: float
    ok: int
    non_2xx: int
    socket_errors: int
    latencies_us: list[int]


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_wrk(cluster: Cluster, connections: int, seconds: int, tag: str, work: Path) -> WrkResult:
    """Three wrk processes at once, one per node, connections spread evenly."""
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i, (url, conns) in enumerate(
            zip(cluster.urls, split(connections, len(cluster.urls)), strict=True)
        ):
            if conns == 0:
                continue
            out = work / f"wrk-{tag}-{i}.txt"
            env = dict(
                os.environ, BENCH_TARGET=cluster.system, BENCH_TAG=f"{tag}{i}", BENCH_OUT=str(out)
            )
            command = [
                "wrk",
                "-t",
                str(conns),
                "-c",
                str(conns),
                "-d",
                f"{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(LUA_SCRIPT),
                url,
            ]
            proc = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=sys.stderr,
                start_new_session=True,
            )
            procs.append((proc, out))
        deadline = time.monotonic() + seconds + WRK_GRACE_S
        for proc, _ in procs:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            if proc.returncode != 0:
                raise BenchError(f"wrk exited with status {proc.returncode}")
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                kill_group(proc.pid)
                proc.wait()
    merged = WrkResult(0.0, 0, 0, 0, [])
    for _, out in procs:
        part = parse_wrk_output(out)
        merged.duration_s = max(merged.duration_s, part.duration_s)
        merged.ok += part.ok
        merged.non_2xx += part.non_2xx
        merged.socket_errors += part.socket_errors
        merged.latencies_us.extend(part.latencies_us)
    return merged


def parse_wrk_output(path: Path) -> WrkResult:
    result = WrkResult(0.0, 0, 0, 0, [])
    for line in path.read_text().splitlines():
        head, _, rest = line.partition(" ")
        if head == "duration_us":
            result.duration_s = int(rest) / 1e6
        elif head == "socket_errors":
            result.socket_errors = int(rest)
        elif head == "thread":
            ok, bad = rest.split()
            result.ok += int(ok)
            result.non_2xx += int(bad)
        else:
            result.latencies_us.append(int(float(line)))
    if len(result.latencies_us) != result.ok:
        raise BenchError(f"{path}: {len(result.latencies_us)} samples for {result.ok} writes")
    return result


def percentile_ms(sorted_us: Sequence[int], q: float) -> float | None:
    if not sorted_us:
        return None
    rank = max(1, min(len(sorted_us), int(q * len(sorted_us) + 0.999999)))
    return round(sorted_us[rank - 1] / 1000.0, 2)


def measure(cluster: Cluster, connections: int, work: Path) -> dict[str, Any]:
    tag = f"{cluster.system[0]}{connections}"
    log(f"{cluster.system}: {connections} connections, warm-up {WARMUP_S} s")
    run_wrk(cluster, connections, WARMUP_S, f"{tag}w", work)
    log(f"{cluster.system}: {connections} connections, measuring {MEASURE_S} s")
    cpu_before = cpu_ms(cluster.pids)
    result = run_wrk(cluster, connections, MEASURE_S, f"{tag}m", work)
    cpu_used = cpu_ms(cluster.pids) - cpu_before
    samples = sorted(result.latencies_us)
    figures: dict[str, Any] = {
        "connections": connections,
        "duration_s": round(result.duration_s, 2),
        "writes": result.ok,
        "writes_per_s": round(result.ok / result.duration_s, 1) if result.duration_s else 0.0,
        "p50_ms": percentile_ms(samples, 0.50),
        "p99_ms": percentile_ms(samples, 0.99),
        "max_ms": round(samples[-1] / 1000.0, 2) if samples else None,
        "errors": {"non_2xx": result.non_2xx, "socket": result.socket_errors},
        "cpu_ms": round(cpu_used, 1),
        "cpu_ms_per_write": round(cpu_used / result.ok, 3) if result.ok else None,
    }
    log(f"{cluster.system} c{connections}: {json.dumps(figures)}")
    return figures


def idle_cpu(cluster: Cluster) -> float:
    """CPU ms per second the three servers use with no load: the floor under every
    per-write figure at low rates (ticks, heartbeats, periodic signatures)."""
    log(f"{cluster.system}: idle CPU over {IDLE_S:g} s")
    before = cpu_ms(cluster.pids)
    began = time.monotonic()
    time.sleep(IDLE_S)  # a fixed measurement window, not a wait for a condition
    return round((cpu_ms(cluster.pids) - before) / (time.monotonic() - began), 1)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def main() -> int:
    ensure_tools()
    began = time.monotonic()
    load_before = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="charter-bench-ledger-") as tmp:
        work = Path(tmp)
        for system, cluster_of in (("etcd", etcd_cluster), ("charter", charter_cluster)):
            area = work / system
            area.mkdir()
            with cluster_of(area) as cluster:
                smoke_write(cluster)
                results[system] = {"idle_cpu_ms_per_s": idle_cpu(cluster)}
                results[system].update({f"c{c}": measure(cluster, c, area) for c in LOADS})
    ch, et = results["charter"], results["etcd"]
    ratios = {
        f"c{c}": {
            "writes_per_s": ratio(ch[f"c{c}"]["writes_per_s"], et[f"c{c}"]["writes_per_s"]),
            "p50": ratio(ch[f"c{c}"]["p50_ms"], et[f"c{c}"]["p50_ms"]),
            "p99": ratio(ch[f"c{c}"]["p99_ms"], et[f"c{c}"]["p99_ms"]),
            "cpu_ms_per_write": ratio(
                ch[f"c{c}"]["cpu_ms_per_write"], et[f"c{c}"]["cpu_ms_per_write"]
            ),
        }
        for c in LOADS
    }
    p99_ok = all((ratios[f"c{c}"]["p99"] or float("inf")) <= 2.0 for c in LOADS)
    targets = {
        "writes_per_s_c64_at_least_etcd": (ratios["c64"]["writes_per_s"] or 0.0) >= 1.0,
        "p99_at_most_2x_etcd_c4_and_c64": p99_ok,
    }
    doc = {
        "benchmark": "ledger",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "tools": {"wrk": tool_version(["wrk", "-v"]), "etcd": tool_version(["etcd", "--version"])},
        "workload": {
            "charter": "PUT /api/v1/tables/bench/{unique key}?wait=committed, JSON string body",
            "etcd": "POST /v3/kv/put (JSON gateway), base64 key and value, default durability",
            "value_bytes": 100,
            "loads_connections": list(LOADS),
            "warmup_s": WARMUP_S,
            "measure_s": MEASURE_S,
            "spread": "three wrk processes per load, one per node/member; "
            "connections split evenly (4 -> 2+1+1, 64 -> 22+21+21)",
            "isolation": "one system runs at a time (etcd first, then Charter)",
        },
        "latency_method": "per-request wall time (CLOCK_MONOTONIC via LuaJIT ffi) taken in "
        "the wrk Lua request()/response() callbacks, one connection per wrk thread so "
        "each pair brackets one request; successful writes only; not wrk's percentiles, "
        "which add synthetic samples to correct for coordinated omission",
        "cpu_method": "utime+stime growth (/proc/PID/stat) of the three server processes "
        "over the measured window, divided by successful writes",
        "charter": ch,
        "etcd": et,
        "ratios_charter_over_etcd": ratios,
        "targets_met": targets,
        "elapsed_s": round(time.monotonic() - began, 1),
    }
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench-ledger: error: {exc}", file=sys.stderr)
        sys.exit(1)
