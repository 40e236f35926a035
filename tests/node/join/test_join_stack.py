"""End to end on a real stack of three node processes: a fourth member's node joins,
catches up and votes; a disallowed measurement is refused; retiring the leader keeps
the network available. Every process is killed at teardown; every wait is bounded."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from charter.cli.demo_gov import gov_act_async
from charter.cli.demo_net import free_base_port, until
from charter.cli.stack import open_stack, stack_dir
from charter.crypto.keyfile import load_ed25519_private_key
from charter.governance import actions as acts
from charter.governance.client import GovClient
from charter.node.config import load_node_config
from charter.node.join import (
    JoinRefused,
    NodePlan,
    build_join_request,
    prepare_node,
    read_words,
    send_join_request,
)
from charter.node.supervisor import kill_group, read_pid, start_node

MEMBERS = ["member1", "member2", "member3"]
NEW = "umbrella"
NEW_NODE = f"{NEW}-node"
WAIT = 60.0


def charter(home: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, CHARTER_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-c", "from charter.cli.main import main; main()", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Net:
    home: Path
    name: str
    root: Path
    urls: dict[str, str]
    """node name -> API URL (the joined node too, once it joined)."""
    client: httpx.Client
    retired: set[str] = field(default_factory=set)

    def status(self, node: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.client.get(f"{self.urls[node]}/api/v1/status").json()
        return doc

    def membership(self, node: str) -> dict[str, Any]:
        r = self.client.get(f"{self.urls[node]}/api/v1/membership")
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        return doc

    def leader(self, among: list[str]) -> str:
        def agreed() -> str | None:
            for n in among:
                try:
                    m = self.membership(n)
                except httpx.HTTPError:
                    continue
                if m["role"] == "leader":
                    return n
            return None

        return until(agreed, WAIT, "a leader")

    def put(self, node: str, key: str, value: Any) -> None:
        r = self.client.put(
            f"{self.urls[node]}/api/v1/tables/app/{key}",
            params={"wait": "committed"},
            json=value,
            timeout=20.0,
        )
        assert r.status_code in (200, 201) and r.json()["status"] == "Committed", r.text


def gov(net: Net, member: str, work: Any) -> Any:
    """Run ``work(client, key)`` as ``member`` against its own node."""
    key = load_ed25519_private_key(net.root / member / "member.pem")
    # a member's requests go through its own node, or any trusted one if its node is not
    live = {n: u for n, u in net.urls.items() if n not in net.retired}
    url = live.get(f"{member}-node") or next(iter(live.values()))

    async def main() -> Any:
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as h:
            return await work(GovClient(h), key)

    return asyncio.run(main())


def decide(net: Net, action: dict[str, Any], voters: list[str]) -> None:
    """``voters[0]`` proposes, the others vote for, until accepted."""
    proposer = voters[0]
    answer = gov(
        net, proposer, lambda c, k: c.propose(proposer, k, [acts.from_json(action)], "join test")
    )
    pid = answer["proposal"]["id"]
    state = answer["proposal"]["state"]
    for v in voters[1:]:
        if state == "accepted":
            break
        state = gov(net, v, lambda c, k, v=v: c.vote(v, k, pid, True))["proposal"]["state"]
    assert state == "accepted", (action, state)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    home = tmp_path_factory.mktemp("charter-home")
    os.environ["CHARTER_HOME"] = str(home)
    name = "join"
    base = free_base_port(len(MEMBERS) + 1)
    init = charter(home, "stack", "init", name, "--members", "3", "--base-port", str(base))
    assert init.wait(60) == 0, init.communicate()
    _, nodes = open_stack(name)
    urls = {n.entry.name: n.entry.api_url for n in nodes}
    n = Net(home, name, stack_dir(name), urls, httpx.Client(timeout=10.0))
    try:
        up = charter(home, "stack", "up", name, "--timeout", "60")
        out, err = up.communicate(timeout=90)
        assert up.returncode == 0, out + err
        yield n
    finally:
        for d in n.root.glob("*/*/data"):
            pid = read_pid(d / "node.pid")
            if pid is not None:
                kill_group(pid)
        n.client.close()
        del os.environ["CHARTER_HOME"]


def test_a_new_member_joins_votes_and_the_leader_retires(net: Net) -> None:
    genesis = list(net.urls)
    # governance bootstraps itself at start; then the members vote a fourth member in
    until(
        lambda: (
            len(net.client.get(f"{net.urls[genesis[0]]}/api/v1/gov/members").json()["items"]) == 3
        ),
        WAIT,
        "governance bootstrapped",
    )
    asyncio.run(
        gov_act_async(
            net.root,
            {m: net.urls[f"{m}-node"] for m in MEMBERS[:2]},
            Console(quiet=True),
            new_member=NEW,
        )
    )

    # a node whose code measurement is not allowed is refused with the handler's reason
    words = read_words(net.root / NEW / "member.words")
    rogue = NodePlan(net.root / NEW / "rogue-node", "rogue-node", NEW, "127.0.0.1", 1, 2)
    config = load_node_config(prepare_node(rogue, net.root / "network.json", words))
    from charter.node.network import load_network

    network = load_network(config.network_file)
    signed = build_join_request(
        network, config, load_ed25519_private_key(config.keys.identity), "0" * 64
    )

    async def refused() -> str:
        async with httpx.AsyncClient() as c:
            with pytest.raises(JoinRefused) as info:
                await send_join_request(c, list(net.urls.values()), signed)
            return info.value.message

    assert "gov.measurement" in asyncio.run(refused())

    # the new member's node asks to join and waits as pending
    joiner = charter(net.home, "node", "join", "--stack", net.name, "--member", NEW,
                     "--timeout", "90", "--start-timeout", "90")  # fmt: skip
    try:

        def pending() -> bool:
            r = net.client.get(f"{net.urls[genesis[0]]}/api/v1/gov/join/{NEW_NODE}")
            return r.status_code == 200 and r.json()["status"] == "pending"

        until(pending, WAIT, "the join request pending")
        decide(net, {"kind": "trust_node", "name": NEW_NODE}, MEMBERS)
        out, err = joiner.communicate(timeout=150)
    finally:
        if joiner.poll() is None:
            joiner.kill()
    assert joiner.returncode == 0, out + err
    assert "state: pending" in out and "is a voter" in out, out

    new_node = load_node_config(net.root / NEW / NEW_NODE / "node.toml")
    net.urls[NEW_NODE] = f"http://{new_node.api.host}:{new_node.api.port}"
    everyone = list(net.urls)
    leader = net.leader(everyone)
    m = net.membership(leader)
    assert len(m["voters"]) == 4 and not m["learners"], m
    net.put(NEW_NODE, "from-the-new-node", {"hello": 4})
    until(
        lambda: net.membership(NEW_NODE)["membership"] in ("voter", "leader"),
        WAIT,
        "new node votes",
    )
    assert net.client.get(f"{net.urls[genesis[1]]}/api/v1/tables/app/from-the-new-node").json() == {
        "hello": 4
    }

    # retiring the current leader: leadership moves, it leaves the configuration, and
    # writes continue
    old = net.membership(leader)["raft_id"]
    decide(net, {"kind": "retire_node", "name": leader}, [*MEMBERS, NEW])
    net.retired.add(leader)
    rest = [n for n in everyone if n != leader]

    def settled() -> str | None:
        new_leader = net.leader(rest)
        view = net.membership(new_leader)
        if old in view["voters"] or old in view["learners"] or len(view["voters"]) != 3:
            return None
        return new_leader

    new_leader = until(settled, WAIT, "the retired leader removed")
    assert new_leader != leader
    for i, n in enumerate(rest):
        net.put(n, f"after-retire-{i}", {"i": i})


def test_the_cli_refuses_a_node_whose_measurement_is_not_allowed(
    net: Net, cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import charter.node.measurement

    monkeypatch.setattr(charter.node.measurement, "measure", lambda root=None: "ab" * 32)
    result = cli(
        "node", "join", "--network", str(net.root / "network.json"), "--member", NEW,
        "--words-file", str(net.root / NEW / "member.words"), "--dir", str(tmp_path / "n"),
        "--name", "unmeasured-node", "--api-port", "3", "--timeout", "5",
    )  # fmt: skip
    line = result.error_line()
    assert result.code == 1 and "node.join.refused" in line and "gov.measurement" in line, line

    # the REST side: a malformed request and an unknown node are problems with stable codes
    url = next(u for n, u in net.urls.items() if n not in net.retired)
    r = net.client.post(f"{url}/api/v1/gov/join", json={"request": "not base64!"})
    assert r.status_code == 400 and r.json()["code"] == "gov.join.malformed", r.text
    r = net.client.get(f"{url}/api/v1/gov/join/nobody-node")
    assert r.status_code == 404 and r.json()["code"] == "gov.join.not_found", r.text


def test_the_demo_act_joins_a_fifth_member(net: Net) -> None:
    """The demo's act: a member voted in by governance gets its node in as a voter."""
    from charter.cli.demo_join import join_act_async
    from charter.identity.root import RootIdentity

    identity, words = RootIdentity.generate()
    fifth = "acme"
    (net.root / fifth).mkdir(mode=0o700)
    (net.root / fifth / "member.words").write_text(words + "\n", encoding="utf-8")
    members = [*MEMBERS, NEW]
    public = identity.root_key().public_key.hex()
    decide(net, {"kind": "add_member", "name": fifth, "public_key": public}, members)
    # the members whose nodes are trusted now (the retired leader's node is not)
    trusted = {
        n["name"]
        for n in net.client.get(f"{net.urls[f'{NEW}-node']}/api/v1/gov/nodes").json()["items"]
        if n["status"] == "trusted"
    }
    urls = {m: net.urls[f"{m}-node"] for m in members if f"{m}-node" in trusted}
    assert len(urls) == 3
    config = asyncio.run(join_act_async(net.root, urls, Console(quiet=True), new_member=fifth))
    node = load_node_config(config)
    net.urls[node.name] = f"http://{node.api.host}:{node.api.port}"
    until(
        lambda: net.membership(node.name)["membership"] in ("voter", "leader"),
        WAIT,
        "fifth node votes",
    )


def test_the_stack_commands_include_the_joined_node(net: Net) -> None:
    """info and status list the joined node; down stops it with the others."""
    info = charter(net.home, "stack", "info", net.name, "--json")
    out, err = info.communicate(timeout=60)
    nodes = {n["name"]: n for n in json.loads(out)["nodes"]}
    assert nodes[NEW_NODE]["pid"] is not None and nodes[NEW_NODE]["api_url"] == net.urls[NEW_NODE]
    status = charter(net.home, "stack", "status", net.name, "--json")
    out, err = status.communicate(timeout=60)
    rows = {r["node"]: r for r in json.loads(out)["nodes"]}
    assert rows[NEW_NODE]["reachable"], rows
    down = charter(net.home, "stack", "down", net.name)
    out, err = down.communicate(timeout=90)
    assert down.returncode == 0 and f"{NEW_NODE}: stopped" in out, out + err

    # restarted from its own files, a joined node is a voter again at once (its Raft
    # state is on disk; nothing is re-requested)
    live = [n for n in net.urls if n not in net.retired]
    for node in live:
        path = next(net.root.glob(f"*/{node}/node.toml"))
        start_node(path, load_node_config(path).data_dir)
    until(lambda: net.membership(NEW_NODE)["membership"] in ("voter", "leader"), WAIT, "votes")
    net.leader(live)
    net.put(NEW_NODE, "after-restart", {"ok": True})
