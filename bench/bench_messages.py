"""Private messages per second, submit at one member to the delivered event at every recipient.

Three members in this process (TLS on loopback, each with its own runtime, Raft, ledger
engine, index database, transfer and messaging service, exactly as a node assembles
them). Member 1 sends private messages to the group {member-1, member-2}; a message is
delivered at a recipient when its release (state ``confirmed`` and the
``message_confirmed`` event) has committed there. Latency is from the submit call to the
later of the two recipients' deliveries.

Two phases per database: a fixed offered load (``--rate`` msg/s for ``--seconds``) and
saturation (``--window`` submits in flight, as fast as they go). Prints one JSON object.
Note that all three members share this process's one event loop and the machine's cores,
so every figure includes the other two members' work.

    .venv/bin/python bench/bench_messages.py [--db sqlite,postgresql] [--rate 1000] [--seconds 5]
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
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from charter.ledger.signatures import SignaturePolicy
from charter.multiparty.component import MultipartyComponent, multiparty_component
from charter.multiparty.model import DataItem, canonical_json
from charter.multiparty.service import MessagingService, SendRequest
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerSettings
from charter.node.raft_transport import Backoff

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SETTINGS = LedgerSettings(
    signature_policy=SignaturePolicy(every_tx=1000, every_ms=50),
    submit_timeout=10.0,
    backoff=Backoff(base=0.01, cap=0.2),
)


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL 15 on a Unix socket; yields an admin URL; stopped at the end."""
    root = Path(tempfile.mkdtemp(prefix="charter-bench-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    run = functools.partial(subprocess.run, check=True, capture_output=True, timeout=120)
    run(
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"
        )
    )
    opts = f"-c listen_addresses='' -k {sock} -p 5433 -c max_connections=100"
    run(
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-o",
            opts,
            "-w",
            "start",
        )
    )
    try:
        yield f"postgresql+asyncpg://postgres@/postgres?host={sock}&port=5433"
    finally:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
            capture_output=True,
            timeout=60,
            check=False,
        )
        subprocess.run(["rm", "-rf", str(root)], check=False)


async def _create_db(admin_url: str) -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(
        host=url.query["host"], port=int(url.query["port"]), user="postgres", database="postgres"
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


class Tracker:
    def __init__(self, recipients: int) -> None:
        self.recipients = recipients
        self.started: dict[str, float] = {}
        self.seen: dict[str, int] = {}
        self.latency: list[float] = []
        self.done_at: list[float] = []
        self.failed = 0
        self.changed = asyncio.Event()

    def observer(self, mid: str, state: str) -> None:
        if mid not in self.started:
            return
        if state != "confirmed":
            self.failed += 1
        n = self.seen.get(mid, 0) + 1
        self.seen[mid] = n
        if n == self.recipients:
            now = time.perf_counter()
            self.latency.append(now - self.started[mid])
            self.done_at.append(now)
            self.changed.set()

    def delivered(self) -> int:
        return len(self.latency)


async def _phase(
    sender: MessagingService, tracker: Tracker, *, rate: float | None, seconds: float, window: int
) -> dict[str, Any]:
    sent = 0
    t0 = time.perf_counter()
    payload = {"text": "x" * 200}
    inflight = asyncio.Semaphore(window)

    async def one() -> None:
        async with inflight:
            items = [DataItem(str(uuid.uuid4()), canonical_json(payload))]
            start = time.perf_counter()
            mid, _ = await sender.send(
                SendRequest("private", "bench", members=("member-2",)), items
            )
            tracker.started[mid] = start

    async with asyncio.TaskGroup() as tg:
        while True:
            now = time.perf_counter()
            if now - t0 >= seconds:
                break
            if rate is not None:
                due = int((now - t0) * rate)
                while sent < due:
                    tg.create_task(one())
                    sent += 1
                await asyncio.sleep(0.002)
            else:
                await inflight.acquire()
                inflight.release()
                tg.create_task(one())
                sent += 1
                await asyncio.sleep(0)
    submit_end = time.perf_counter()
    target = len(tracker.started)
    async with asyncio.timeout(120):
        while tracker.delivered() < target:
            tracker.changed.clear()
            await tracker.changed.wait()
    end = time.perf_counter()
    lat = [x * 1000 for x in tracker.latency]
    return {
        "offered_rate": rate,
        "submitted": target,
        "delivered_everywhere": tracker.delivered(),
        "failed": tracker.failed,
        "submit_seconds": round(submit_end - t0, 3),
        "seconds_to_last_delivery": round(end - t0, 3),
        "delivered_per_s": round(tracker.delivered() / (end - t0), 1),
        "p50_ms": round(_pct(lat, 50), 1),
        "p99_ms": round(_pct(lat, 99), 1),
        "mean_ms": round(statistics.fmean(lat), 1) if lat else None,
    }


async def _run_db(db: str, admin_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "multiparty": {"batch": {"max_count": 500, "max_bytes": 1 << 20, "max_wait": 0.0}}
    }
    if db == "postgresql":
        assert admin_url is not None
        settings["multiparty"]["store_urls"] = {
            f"member-{n}": await _create_db(admin_url) for n in (1, 2, 3)
        }
    with tempfile.TemporaryDirectory(prefix="charter-bench-mp-") as root:
        async with LocalLedgerNetwork(
            "tls",
            settings=SETTINGS,
            components=[multiparty_component],
            data_root=Path(root),
            component_settings=settings,
        ) as net:
            await net.elect(20)

            def mp(nid: int) -> MessagingService:
                (c,) = [
                    c for c in net.members[nid].components if isinstance(c, MultipartyComponent)
                ]
                assert c.messaging is not None
                return c.messaging

            async with asyncio.timeout(30):
                for n in (1, 2, 3):
                    await mp(n).ready.wait()
            out: dict[str, Any] = {}
            phases = [
                ("warmup", 200.0, 1.0),
                ("fixed_rate", args.rate, args.seconds),
                ("saturation", None, args.seconds),
            ]
            for name, rate, seconds in phases:
                tracker = Tracker(recipients=2)
                for n in (1, 2):
                    mp(n).observers.append(tracker.observer)
                result = await _phase(
                    mp(1), tracker, rate=rate, seconds=seconds, window=args.window
                )
                for n in (1, 2):
                    mp(n).observers.remove(tracker.observer)
                if name != "warmup":
                    out[name] = result
            return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite,postgresql")
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--window", type=int, default=2000, help="submits in flight at saturation")
    args = ap.parse_args()
    results: dict[str, Any] = {
        "benchmark": "messages.private",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "members": 3,
        "group": ["member-1", "member-2"],
        "targets": {"saturation_msgs_per_s": 2000, "p99_ms_at_1000_per_s": 250},
        "results": {},
    }
    for db in args.db.split(","):
        if db == "postgresql":
            if not (PG_BIN / "initdb").exists():
                results["results"][db] = {"skipped": "no PostgreSQL binaries"}
                continue
            with postgres_server() as admin:
                results["results"][db] = await _run_db(db, admin, args)
        else:
            results["results"][db] = await _run_db(db, None, args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
