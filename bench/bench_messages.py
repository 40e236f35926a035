"""Private messages per second on a 3-member loopback stack, submit to the delivered event
at every recipient.

``charter stack init/up`` starts three node processes (Raft and the message transfer
over OCapN/TLS, each node with its own index database: SQLite, or a database of one
throwaway PostgreSQL 15 server). Clients post private messages to member1's
``POST /api/v1/messages/private`` for the group {member1, member2}, one message per
request, over keep-alive connections. A message is delivered at a recipient when its
``message_confirmed`` event is in that node's event log, read by paging
``GET /api/v1/events?after=OFFSET`` (again at once after a full page, else after
10 ms); latency is from the moment
the message was due to be submitted (so a client that falls behind counts against the
system) to the later of the two recipients' events being read. member3 holds the
ledger's copy of the pins and nothing of the messages.

Two phases per database after a warm-up: a fixed offered load (``--rate`` msg/s for
``--seconds``) and saturation (``--connections`` requests in flight, as fast as they
are answered). Prints one JSON object on stdout; progress goes to stderr.

    .venv/bin/python bench/bench_messages.py [--db sqlite,postgresql] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import pwd
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop

from stackrun import BenchError, cpu_ms, stack

PG_BIN = Path("/usr/lib/postgresql/15/bin")
STACK = "msgbench"
POLL_S = 0.01
"""How long a watcher waits after a short page: little against the 250 ms target, while
polling more often only burns the nodes' CPU on empty answers."""
TAG = "bench-messages"
SENDER, OTHER = "member1", "member2"
TOPIC = "bench"
PAYLOAD = "x" * 200


def log(message: str) -> None:
    print(f"[{TAG}] {message}", file=sys.stderr, flush=True)


# -- a throwaway PostgreSQL ------------------------------------------------------------------


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


@contextlib.contextmanager
def postgres_server() -> Iterator[Path]:
    """A PostgreSQL 15 on a Unix socket in a temporary directory; yields the socket dir."""
    root = Path(tempfile.mkdtemp(prefix="charter-bench-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    run = functools.partial(subprocess.run, check=True, capture_output=True, timeout=120)
    initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
    run(_as_postgres(*initdb, "--no-sync"))
    opts = f"-c listen_addresses='' -k {sock} -p 5433 -c max_connections=100"
    pg_ctl = str(PG_BIN / "pg_ctl")
    run(_as_postgres(pg_ctl, "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w", "start"))
    try:
        yield sock
    finally:
        subprocess.run(
            _as_postgres(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"),
            capture_output=True,
            timeout=60,
            check=False,
        )
        subprocess.run(["rm", "-rf", str(root)], check=False)


def create_database(sock: Path) -> str:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    psql = [str(PG_BIN / "psql"), "-h", str(sock), "-p", "5433", "-U", "postgres", "-q"]
    subprocess.run(
        _as_postgres(*psql, "-c", f'CREATE DATABASE "{name}"'),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return f"postgresql+asyncpg://postgres@/{name}?host={sock}&port=5433"


# -- a small HTTP/1.1 client: the load generator must not eat the nodes' CPU ----------------


class Conn:
    """One keep-alive connection; requests are pre-built bytes, answers (status, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base: str) -> Conn:
        u = urlsplit(base)
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def post(host: str, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def get(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


# -- load and observation --------------------------------------------------------------------


@dataclass
class Tracker:
    """Due times of submitted messages and when each recipient's event was read."""

    recipients: int
    due: dict[str, float] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    latency: list[float] = field(default_factory=list)
    failed: int = 0
    errors: int = 0
    early: dict[str, int] = field(default_factory=dict)
    """Events read before their submit was answered (a fast round beats the HTTP reply)."""
    target: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once every submitted message is delivered or refused (`target` known)."""

    def settle(self) -> None:
        if self.target is not None and len(self.latency) + self.errors >= self.target:
            self.done.set()

    def refused(self) -> None:
        self.errors += 1
        self.settle()

    def submitted(self, mid: str, due: float) -> None:
        self.due[mid] = due
        n = self.early.pop(mid, 0)
        if n:
            self.seen[mid] = n - 1
            self.arrived(mid, "message_confirmed")

    def arrived(self, mid: str, kind: str) -> None:
        due = self.due.get(mid)
        if due is None:
            self.early[mid] = self.early.get(mid, 0) + 1
            return
        if kind != "message_confirmed":
            self.failed += 1
        n = self.seen.get(mid, 0) + 1
        self.seen[mid] = n
        if n == self.recipients:
            self.latency.append(time.perf_counter() - due)
            self.settle()

    def delivered(self) -> int:
        return len(self.latency)


async def watch(base: str, tracker: Tracker, stop: asyncio.Event, ready: asyncio.Event) -> None:
    """Page a recipient's event log from its current end, feeding the tracker."""
    host = urlsplit(base).netloc
    conn = await Conn.open(base)
    try:
        status, body = await conn.request(get(host, "/api/v1/events?limit=1000&after=0"))
        after = 0
        while True:  # find the end of the log first: only this run's events count
            page = json.loads(body)
            if not page:
                break
            after = int(page[-1]["offset"])
            status, body = await conn.request(get(host, f"/api/v1/events?limit=1000&after={after}"))
        ready.set()
        types = "type=message_confirmed&type=message_failed"
        while not stop.is_set():
            status, body = await conn.request(
                get(host, f"/api/v1/events?{types}&limit=1000&after={after}")
            )
            if status != 200:
                raise BenchError(f"GET events at {base}: {status} {body[:200]!r}")
            page = json.loads(body)
            for e in page:
                tracker.arrived(e["reference"], e["type"])
            if page:
                after = int(page[-1]["offset"])
            if len(page) < 1000:
                await asyncio.sleep(POLL_S)
    finally:
        conn.close()


async def phase(
    sender: str,
    recipients: list[str],
    *,
    rate: float | None,
    seconds: float,
    connections: int,
) -> dict[str, Any]:
    tracker = Tracker(recipients=len(recipients))
    stop = asyncio.Event()
    host = urlsplit(sender).netloc
    body = json.dumps(
        {"header": {"topic": TOPIC}, "group": {"members": [OTHER]}, "data": [{"value": None}]}
    )
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    conns = [await Conn.open(sender) for _ in range(connections)]
    for c in conns:
        pool.put_nowait(c)
    inflight = asyncio.Semaphore(connections)
    sent = 0
    complete = True

    async def one(due: float, n: int) -> None:
        conn = await pool.get()
        try:
            raw = body.replace("null", json.dumps({"text": PAYLOAD, "n": n}))
            status, answer = await conn.request(
                post(host, "/api/v1/messages/private", raw.encode())
            )
        finally:
            pool.put_nowait(conn)
        if status not in (200, 202):
            tracker.refused()
            return
        tracker.submitted(json.loads(answer)["id"], due)

    async with asyncio.TaskGroup() as watchers:
        for r in recipients:
            ready = asyncio.Event()
            watchers.create_task(watch(r, tracker, stop, ready))
            await ready.wait()  # only events after the end of the log as it is now count
        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            while (now := time.perf_counter()) - t0 < seconds:
                if rate is not None:
                    due = int((now - t0) * rate)
                    while sent < due:
                        sent += 1
                        tg.create_task(one(t0 + sent / rate, sent))
                    await asyncio.sleep(0.001)
                else:  # a new request as soon as one of the connections is free
                    await inflight.acquire()
                    sent += 1
                    task = tg.create_task(one(time.perf_counter(), sent))
                    task.add_done_callback(lambda _t: inflight.release())
        submit_end = time.perf_counter()
        try:
            async with asyncio.timeout(120):
                tracker.target = sent
                tracker.settle()
                await tracker.done.wait()
        except TimeoutError:
            complete = False
        finally:
            stop.set()
    end = time.perf_counter()
    for c in conns:
        c.close()
    lat = sorted(x * 1000 for x in tracker.latency)

    def pct(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 1) if lat else None

    return {
        "offered_rate": rate,
        "submitted": sent,
        "delivered_everywhere": tracker.delivered(),
        "failed": tracker.failed,
        "request_errors": tracker.errors,
        "submit_seconds": round(submit_end - t0, 3),
        "seconds_to_last_delivery": round(end - t0, 3),
        "submitted_per_s": round(sent / (submit_end - t0), 1),
        "delivered_per_s": round(tracker.delivered() / (end - t0), 1),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": round(lat[-1], 1) if lat else None,
        "all_delivered_within_120_s": complete,
    }


async def measure(nodes: list[tuple[str, str]], pids: list[int], args: argparse.Namespace) -> Any:
    urls = dict(nodes)
    sender, recipients = urls[SENDER], [urls[SENDER], urls[OTHER]]
    out: dict[str, Any] = {}
    for name, rate, seconds in (
        ("warmup", min(args.rate, 300.0), 2.0),
        ("fixed_rate", args.rate, args.seconds),
        ("saturation", None, args.seconds),
    ):
        log(f"{name}: {'saturation' if rate is None else f'{rate:g} msg/s'} for {seconds:g} s")
        before = cpu_ms(pids)
        result = await phase(
            sender, recipients, rate=rate, seconds=seconds, connections=args.connections
        )
        used = cpu_ms(pids) - before
        if result["delivered_everywhere"]:
            result["cpu_ms_per_message"] = round(used / result["delivered_everywhere"], 3)
        log(f"{name}: {result['delivered_per_s']} msg/s, p99 {result['p99_ms']} ms")
        if name != "warmup":
            out[name] = result
    return out


def run_db(db: str, args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack_:
        configure = None
        if db == "postgresql":
            sock = stack_.enter_context(postgres_server())

            def configure(_member: str, config: Path) -> None:
                with config.open("a") as f:
                    f.write(f'\n[store]\nurl = "{create_database(sock)}"\n')

        tmp = Path(stack_.enter_context(tempfile.TemporaryDirectory(prefix="charter-bench-mp-")))
        nodes, pids = stack_.enter_context(stack(tmp, STACK, TAG, configure=configure))
        return uvloop.run(measure(nodes, pids, args))  # a lighter client: more CPU for the nodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument(
        "--connections",
        type=int,
        default=512,
        help="connections, so requests in flight at most (an open-loop 1,000 msg/s needs rate x latency of them)",
    )
    args = ap.parse_args()
    dbs = args.db.split(",")
    if not set(dbs) <= {"sqlite", "postgresql"} or not 1 <= args.seconds <= 120:
        ap.error("--db takes sqlite and/or postgresql; --seconds 1..120")
    if not 1 <= args.connections <= 512 or not 1 <= args.rate <= 20000:
        ap.error("--connections 1..512, --rate 1..20000")
    results: dict[str, Any] = {
        "benchmark": "messages.private",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "stack": {"members": 3, "transport": "OCapN over TLS 1.3, loopback"},
        "load": {
            "endpoint": "POST /api/v1/messages/private, one message per request",
            "group": [SENDER, OTHER],
            "payload_bytes": len(PAYLOAD),
            "connections": args.connections,
        },
        "targets": {"saturation_msgs_per_s": 2000, "p99_ms_at_1000_per_s": 250},
        "results": {},
    }
    for db in dbs:
        if db == "postgresql" and not (PG_BIN / "initdb").exists():
            results["results"][db] = {"skipped": "no PostgreSQL binaries"}
            continue
        results["results"][db] = run_db(db, args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
