"""Three node processes on loopback: writes, reads, receipts, failover, restart, crashes.

The tests of this module share one stack (started once, ~5 s) and run in file order;
each leaves every node running, so the next one starts from a whole network (but the
last, which leaves a node stopped on a tampered log).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from charter.crypto.keyfile import load_ed25519_private_key
from charter.crypto.keys import Ed25519PrivateKey
from charter.errors import CharterError
from charter.ledger.engine import Transaction, sign_batch
from charter.ledger.framing import encode_frame
from charter.ledger.verify import verify_receipt
from charter.node.ledger_submit import INTRODUCE, SUBMIT, submit_swiss
from charter.node.network import load_network
from charter.node.process import ledger_settings
from charter.node.supervisor import node_command
from charter.ocapn.locator import SturdyRef
from charter.ocapn.netlayer.tls import TlsNetlayer
from charter.ocapn.runtime import Runtime

from .conftest import Stack, charter, until

CRASH_ROUNDS = int(os.environ.get("CHARTER_CRASH_ROUNDS", "20"))
"""Rounds of the kill -9 soak; CHARTER_CRASH_ROUNDS overrides (fewer for quick local runs)."""


def test_every_node_running_and_one_leader(stack: Stack) -> None:
    for name in stack.names():
        assert stack.pid(name) is not None
    leader = stack.leader()
    roles = sorted(stack.status(n)["role"] for n in stack.names())
    assert roles == ["follower", "follower", "leader"], (leader, roles)


def test_metrics_on_the_metrics_listener(stack: Stack) -> None:
    for n in stack.nodes:
        assert n.config.metrics is not None
        url = f"http://{n.config.metrics.host}:{n.config.metrics.port}/metrics"
        text = stack.client.get(url, timeout=5.0).text
        assert "charter_raft_term" in text
        count = next(
            line
            for line in text.splitlines()
            if line.startswith("charter_fsync_duration_seconds_count")
        )
        assert float(count.split()[-1]) > 0, count  # the Raft storage is timed


def test_writes_from_each_member_read_from_all(stack: Stack) -> None:
    written: dict[str, str] = {}
    for name in stack.names():
        key = f"from-{name}"
        stack.put(name, "greetings", key, {"hello": name})
        written[key] = name
    for reader in stack.names():
        for key, writer in written.items():
            until(
                lambda r=reader, k=key, w=writer: stack.get(r, "greetings", k) == {"hello": w},
                10.0,
                f"{key} on {reader}",
            )
    assert stack.get(stack.names()[0], "greetings", "never-written") is None


def test_state_events_and_ledger_metrics_of_running_nodes(stack: Stack) -> None:
    for name in stack.names():
        stack.put(name, "events", f"at-{name}", {"n": 1})
    for n in stack.nodes:
        name = n.entry.name
        until(lambda nm=name: "raft.leader_changed" in stack.log(nm), 10.0, f"{name} events")
        assert "raft.role_changed" in stack.log(name)
        assert n.config.metrics is not None
        url = f"http://{n.config.metrics.host}:{n.config.metrics.port}/metrics"

        def sample(metric: str, text: str) -> float:
            line = next(ln for ln in text.splitlines() if ln.startswith(metric + " "))
            return float(line.split()[-1])

        text = stack.client.get(url, timeout=5.0).text
        # each node signed and proposed at least its own write's batch
        assert sample("charter_batch_size_count", text) >= 1, name
        # every node, followers included, counts the signatures it applied
        until(
            lambda u=url: (
                sample(
                    "charter_signature_transactions_total", stack.client.get(u, timeout=5.0).text
                )
                >= 1
            ),
            10.0,
            f"{name} counts signatures",
        )


def test_raft_tuning_of_node_toml_reaches_the_ledger_settings(stack: Stack) -> None:
    config = stack.nodes[0].config
    tuned = dataclasses.replace(
        config, tuning=dataclasses.replace(config.tuning, election_ticks=15, heartbeat_ticks=4)
    )
    settings = ledger_settings(tuned, observe_batch_size=print)
    assert (settings.election_ticks, settings.heartbeat_ticks) == (15, 4)
    assert settings.observe_batch_size is print


def test_receipts_verify_offline_and_a_flipped_bit_fails(stack: Stack) -> None:
    name = stack.names()[1]
    tx_id = stack.put(name, "receipts", "r1", {"amount": 7})
    network = load_network(stack.node(name).config.network_file)
    trusted = network.trusted_nodes()
    for fmt in ("receipt", "receipt.cose"):
        r = until(
            lambda f=fmt: (
                resp
                if (
                    resp := stack.client.get(stack.url(name, f"/api/v1/tx/{tx_id}/{f}"))
                ).status_code
                == 200
                else None
            ),
            10.0,
            f"{fmt} of {tx_id}",
        )
        data = r.content
        verify_receipt(data, trusted)
        # One flipped bit anywhere in the signed material must fail verification.
        for pos in (len(data) // 3, len(data) // 2, len(data) - 5):
            forged = bytearray(data)
            forged[pos] ^= 0x01
            with pytest.raises(CharterError):
                verify_receipt(bytes(forged), trusted)
    # and the command line agrees
    path = stack.home / "receipt.json"
    path.write_bytes(stack.client.get(stack.url(name, f"/api/v1/tx/{tx_id}/receipt")).content)
    ok = charter(
        stack.home,
        "receipt",
        "verify",
        str(path),
        "--network",
        str(stack.node(name).config.network_file),
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_kill_leader_new_leader_writes_continue_restart_catches_up(stack: Stack) -> None:
    old = stack.leader()
    stack.put(old, "failover", "before", 1)
    stack.kill9(old)
    rest = [n for n in stack.names() if n != old]
    began = time.monotonic()
    new = stack.leader(among=rest, within=20.0)
    elected_in = time.monotonic() - began
    assert new != old
    for i, name in enumerate(rest):
        stack.put(name, "failover", f"after-{i}", {"by": name})
    # the killed node starts again on its data directory and catches up
    stack.start(old)
    stack.wait_ready(old)
    for i, name in enumerate(rest):
        until(
            lambda k=f"after-{i}", w=name: stack.get(old, "failover", k) == {"by": w},
            15.0,
            f"after-{i} on restarted {old}",
        )
    assert stack.get(old, "failover", "before") == 1
    print(f"leader re-elected in {elected_in:.2f} s")


def test_second_process_on_a_data_dir_is_refused(stack: Stack) -> None:
    name = stack.names()[0]
    n = stack.node(name)
    proc = subprocess.run(
        node_command(n.config_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ledger.state" in lines[0] and "in use" in lines[0], proc.stderr
    assert stack.pid(name) is not None  # the running node is untouched


class _Soak:
    """One writer PUTting without pause while rounds of kill -9 and restart go on."""

    def __init__(self, stack: Stack, rounds: int, seed: int) -> None:
        self.stack = stack
        self.rounds = rounds
        self.rng = random.Random(seed)
        self.acknowledged: list[tuple[str, str]] = []  # (key, tx_id), acknowledgement order
        self.failed = 0
        self.done = asyncio.Event()
        self.progress = asyncio.Event()

    async def writer(self, client: httpx.AsyncClient) -> None:
        seq = 0
        deadline = time.monotonic() + 30.0 * self.rounds + 30.0
        while not self.done.is_set() and time.monotonic() < deadline:
            live = [n for n in self.stack.names() if self.stack.pid(n) is not None]
            if not live:
                raise AssertionError("no live node to write to")
            seq += 1
            key = f"k{seq:05d}"
            name = self.rng.choice(live)
            try:
                r = await client.put(
                    self.stack.url(name, f"/api/v1/tables/soak/{key}"),
                    params={"wait": "committed"},
                    json={"seq": seq},
                    timeout=15.0,
                )
            except httpx.HTTPError:
                self.failed += 1  # not acknowledged: allowed to be lost
                continue
            if r.status_code == 200 and r.json().get("status") == "Committed":
                self.acknowledged.append((key, r.json()["tx_id"]))
                self.progress.set()
            else:
                self.failed += 1

    async def acks(self, count: int, within: float) -> None:
        """Wait (bounded) until ``count`` more writes are acknowledged."""
        target = len(self.acknowledged) + count
        async with asyncio.timeout(within):
            while len(self.acknowledged) < target:
                self.progress.clear()
                await self.progress.wait()

    async def killer(self, client: httpx.AsyncClient) -> None:
        try:
            names = self.stack.names()
            for _ in range(self.rounds):
                await self.acks(self.rng.randrange(1, 4), 20.0)
                victim = self.rng.choice(names)
                self.stack.kill9(victim)
                await self.acks(3, 20.0)  # the other two go on committing
                self.stack.start(victim)
                await _ready(client, self.stack.url(victim, "/readyz"), 20.0)
            await self.acks(2, 20.0)
        finally:
            self.done.set()


async def _ready(client: httpx.AsyncClient, url: str, within: float) -> None:
    async with asyncio.timeout(within):
        while True:
            try:
                if (await client.get(url, timeout=2.0)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)


async def _soak(soak: _Soak) -> None:
    async with httpx.AsyncClient() as client, asyncio.TaskGroup() as tg:
        tg.create_task(soak.writer(client))
        tg.create_task(soak.killer(client))


def test_crash_rounds_keep_every_committed_write_in_order(stack: Stack) -> None:
    """Random kill -9 under continuous writes; every acknowledged write survives, in the
    same order, on every node."""
    seed = int.from_bytes(os.urandom(4), "big")
    soak = _Soak(stack, CRASH_ROUNDS, seed)
    began = time.monotonic()
    asyncio.run(_soak(soak))
    acknowledged = soak.acknowledged
    assert len(acknowledged) >= CRASH_ROUNDS * 4, (seed, len(acknowledged))
    # One writer at a time: acknowledgement order is ledger order, without gaps or repeats.
    seqnos = [int(t.split(".")[1]) for _, t in acknowledged]
    assert seqnos == sorted(seqnos) and len(set(seqnos)) == len(seqnos), (seed, acknowledged)
    # every node has the last write (so all before it) applied; then check each write there
    last_key = acknowledged[-1][0]
    for name in stack.names():
        until(
            lambda n=name: stack.get(n, "soak", last_key) is not None, 15.0, f"{last_key} on {name}"
        )
    missing = asyncio.run(_check_everywhere(stack, acknowledged))
    assert not missing, (seed, missing[:10])
    print(
        f"{CRASH_ROUNDS} kill -9 rounds: {len(acknowledged)} writes acknowledged, "
        f"{soak.failed} refused or lost in flight, {time.monotonic() - began:.1f} s"
    )


async def _check_everywhere(
    stack: Stack, acknowledged: list[tuple[str, str]]
) -> list[tuple[str, str, object]]:
    """Every acknowledged write readable and Committed on every node (requests in parallel)."""
    gate = asyncio.Semaphore(16)
    problems: list[tuple[str, str, object]] = []

    async def check(client: httpx.AsyncClient, name: str, key: str, tx_id: str) -> None:
        async with gate:
            value = await client.get(stack.url(name, f"/api/v1/tables/soak/{key}"))
            status = await client.get(stack.url(name, f"/api/v1/tx/{tx_id}"))
        if value.status_code != 200:
            problems.append((name, key, value.status_code))
        elif status.json().get("status") != "Committed":
            problems.append((name, tx_id, status.json()))

    async with httpx.AsyncClient(timeout=15.0) as client, asyncio.TaskGroup() as tg:
        for name in stack.names():
            for key, tx_id in acknowledged:
                tg.create_task(check(client, name, key, tx_id))
    return problems


def _segments(stack: Stack, name: str) -> list[Path]:
    raft = stack.node(name).config.data_dir / "raft"
    return sorted(p for p in raft.glob("log.*/*") if p.suffix in (".seg", ".committed"))


def _sigterm(stack: Stack, name: str) -> None:
    pid = stack.pid(name)
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    until(lambda: stack.pid(name) is None, 10.0, f"{name} exits on SIGTERM")
    pid_file = stack.node(name).config.data_dir / "node.pid"
    assert not pid_file.exists(), "a clean shutdown removes the pid file"


def test_torn_final_segment_is_recovered_on_restart(stack: Stack) -> None:
    leader = stack.leader()
    victim = next(n for n in stack.names() if n != leader)
    stack.put(leader, "torn", "before", 1)
    until(lambda: stack.get(victim, "torn", "before") == 1, 10.0, "write reaches victim")
    _sigterm(stack, victim)
    last = _segments(stack, victim)[-1]
    size = last.stat().st_size
    # What a crash in the middle of an append leaves: the next record, cut mid-record.
    # (A record the state file already counts as committed was fsynced before that
    # count was written, so cutting into it is damage, not a torn tail: see below.)
    torn = encode_frame(b"\x07" * 300)[:150]
    with open(last, "ab") as f:
        f.write(torn)
    assert last.stat().st_size == size + len(torn)
    stack.put(leader, "torn", "while-down", 2)
    stack.start(victim)
    stack.wait_ready(victim)
    until(lambda: stack.get(victim, "torn", "while-down") == 2, 15.0, "victim catches up")
    assert stack.get(victim, "torn", "before") == 1
    opened = [line for line in stack.log(victim).splitlines() if "node.storage_opened" in line]
    assert '"torn_tail": null' not in opened[-1] and "torn_tail" in opened[-1], opened[-1]


def test_a_cut_into_a_committed_record_is_refused_until_repaired(stack: Stack) -> None:
    """A record the state file counts as committed was fsynced before that count: a log
    that lost it is damage (the disk lied), so the node refuses to start rather than vote
    or serve without it; restoring the file lets it start and catch up."""
    leader = stack.leader()
    victim = next(n for n in stack.names() if n != leader)
    stack.put(leader, "cut", "before", 1)
    until(lambda: stack.get(victim, "cut", "before") == 1, 10.0, "write reaches victim")
    _sigterm(stack, victim)
    last = _segments(stack, victim)[-1]
    whole = last.read_bytes()
    with open(last, "r+b") as f:
        f.truncate(len(whole) - 5)  # the last record, cut in the middle
    n = stack.node(victim)
    proc = subprocess.run(
        node_command(n.config_path), capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ledger.corrupt" in lines[0] and "commit" in lines[0], lines
    last.write_bytes(whole)
    stack.put(leader, "cut", "while-down", 2)
    stack.start(victim)
    stack.wait_ready(victim)
    until(lambda: stack.get(victim, "cut", "while-down") == 2, 15.0, "victim catches up")


class _Caller:
    """What the impostor exports to introduce itself to the submit gate."""


async def _submit_forged(stack: Stack, posing_as: str, leader: str, forged: bytes) -> list[Any]:
    """Connect with ``posing_as``'s real identity key (so the network accepts the session)
    and hand the leader's ``ledger-submit`` facet a batch signed by another key."""
    node = stack.node(posing_as)
    network = load_network(node.config.network_file)
    key = load_ed25519_private_key(node.config.keys.identity)
    runtime = Runtime([TlsNetlayer(key.to_cryptography(), "127.0.0.1", 0)])
    await runtime.start()
    try:
        async with asyncio.timeout(15):
            entry = network.node(leader)
            gate = await runtime.enliven(
                SturdyRef(entry.location(), submit_swiss(network.network_id, entry.raft_id))
            )
            facet = await gate.send(INTRODUCE, _Caller())
            reply = await facet.send(SUBMIT, forged)
    finally:
        await runtime.close()
    assert isinstance(reply, list)
    return reply


def test_forged_batch_signature_is_invalid_everywhere(stack: Stack) -> None:
    leader = stack.leader()
    impostor, victim = (n for n in stack.names() if n != leader)
    _sigterm(stack, impostor)
    before = stack.status(leader)
    wrong_key = Ed25519PrivateKey.generate()
    forged = sign_batch(
        wrong_key,
        victim,  # claims to be the victim's batch
        time.time_ns() // 1000,
        [Transaction.of([("forged", "k", b'{"stolen": true}')])],
    )
    reply = asyncio.run(_submit_forged(stack, impostor, leader, forged))
    assert reply[0] == "ok", reply  # the leader orders it: judging is every engine's job
    tx_id = stack.put(leader, "forged", "after", 1)
    view, upto = (int(x) for x in tx_id.split("."))
    stack.start(impostor)
    stack.wait_ready(impostor)
    for name in stack.names():
        until(lambda n=name: stack.get(n, "forged", "after") == 1, 15.0, f"after on {name}")
        assert stack.get(name, "forged", "k") is None
        reasons = []
        for seqno in range(before["last_seqno"] + 1, upto):
            doc = stack.client.get(stack.url(name, f"/api/v1/tx/{view}.{seqno}")).json()
            if doc["status"] == "Invalid":
                reasons.append(doc.get("reason", ""))
        assert any("signature does not verify" in str(r) for r in reasons), (name, reasons)


def test_tampered_committed_entry_stops_the_node(stack: Stack) -> None:
    leader = stack.leader()
    victim = next(n for n in stack.names() if n != leader)
    _sigterm(stack, victim)
    first = _segments(stack, victim)[0]
    data = bytearray(first.read_bytes())
    pos = min(40, len(data) // 4)  # inside an early, committed record
    data[pos] ^= 0x20
    first.chmod(0o644)
    first.write_bytes(bytes(data))
    n = stack.node(victim)
    proc = subprocess.run(
        node_command(n.config_path), capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ledger.corrupt" in lines[0], proc.stderr
    # the other two still form a quorum and take writes
    stack.put(leader, "tamper", "after", 3)
