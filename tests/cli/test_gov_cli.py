"""``charter gov`` from the command line; one end-to-end run on a real three-node stack."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from charter.cli.demo_net import free_base_port
from charter.cli.gov import action_from_args
from charter.crypto.keyfile import load_ed25519_private_key
from charter.crypto.keys import Ed25519PrivateKey
from charter.governance.client import GovClient, GovClientError
from charter.governance.requests import Ballot
from charter.node.supervisor import kill_group, read_pid

from ..conftest import CliRunner


def test_actions_from_arguments(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pub = tmp_path / "k.pub.pem"
    from charter.crypto.keyfile import write_public_key

    write_public_key(pub, key.public_key)
    a = action_from_args("add_member", ["name=m4", f"public_key=@{pub}", "roles=b,a"])
    assert a.args["public_key"] == key.public_key.raw and a.args["roles"] == ["a", "b"]
    t = action_from_args("set_threshold", ["action=default", 'threshold={"rule":"all"}'])
    assert t.kind == "set_threshold"
    d = action_from_args("set_member_data", ["name=m1", "data=org:Acme,city:Basel"])
    assert d.args["data"] == {"org": "Acme", "city": "Basel"}


def test_usage_errors_are_one_line(cli: CliRunner, tmp_path: Path) -> None:
    assert (
        "unknown action kind"
        in cli("gov", "propose", "nonsense", "--api", "http://x:1").error_line()
    )
    line = cli("gov", "propose", "trigger_snapshot", "--api", "http://127.0.0.1:9").error_line()
    assert "--member NAME is required" in line
    bad = cli("gov", "propose", "add_member", "name=x", "--member", "a", "--api", "http://x:1")
    assert "public_key" in bad.error_line()
    assert "--for or --against" in cli("gov", "vote", "1.2", "--api", "http://x:1").error_line()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path))
    yield tmp_path
    for pid_file in tmp_path.glob("stacks/*/*/*/data/node.pid"):
        pid = read_pid(pid_file)
        if pid is not None:
            kill_group(pid)


def test_governance_on_a_real_stack(cli: CliRunner, home: Path, tmp_path: Path) -> None:
    base = free_base_port(3)
    assert cli("stack", "init", "gov", "--base-port", str(base)).code == 0
    up = cli("stack", "up", "gov", "--timeout", "40")
    assert up.code == 0, up.out + up.err
    s = ["--stack", "gov"]

    doc = json.loads(cli("gov", "constitution", *s).out)
    assert doc["bootstrapped"] is True and len(doc["measurements"]) == 1

    newcomer = Ed25519PrivateKey.generate()
    out = cli(
        "gov", "propose", "add_member", "name=member4", f"public_key={newcomer.public_key.hex()}",
        "--title", "admit member4", *s, "--member", "member1",
    )  # fmt: skip
    assert out.code == 0, out.err
    assert "ok proposed" in out.out and " open, 1 for" in out.out
    pid = out.out.split("proposal ")[1].split()[0]
    voted = cli("gov", "vote", pid, "--for", *s, "--member", "member2")
    assert voted.code == 0, voted.err
    assert "accepted" in voted.out

    # a removed member's ballot is refused
    removal = cli("gov", "propose", "remove_member", "name=member3", *s, "--member", "member1")
    rid = removal.out.split("proposal ")[1].split()[0]
    # four members now: a majority is three
    assert "open, 2 for" in cli("gov", "vote", rid, "--for", *s, "--member", "member4",
                                "--key-file", str(_pem(tmp_path, newcomer))).out  # fmt: skip
    assert "accepted" in cli("gov", "vote", rid, "--for", *s, "--member", "member2").out
    open_out = cli("gov", "propose", "trigger_snapshot", *s, "--member", "member1")
    oid = open_out.out.split("proposal ")[1].split()[0]
    refused = cli("gov", "vote", oid, "--for", *s, "--member", "member3")
    assert "[gov.member]" in refused.error_line() and "member3" in refused.error_line()

    # forged: member2's name, member1's key
    forged = cli(
        "gov", "vote", oid, "--for", *s, "--member", "member2",
        "--key-file", str(home / "stacks/gov/member1/member.pem"),
    )  # fmt: skip
    assert "[gov.signature]" in forged.error_line()

    # replayed and stale requests
    member2 = load_ed25519_private_key(home / "stacks/gov/member2/member.pem")
    api = f"http://127.0.0.1:{base + 10}"

    async def replay_and_stale() -> tuple[int, str, str]:
        async with httpx.AsyncClient(base_url=api, timeout=30) as http:
            client = GovClient(http)
            ballot = await client.sign("member2", member2, Ballot(oid, False))
            await client.send(ballot)
            second = await http.post(
                f"/api/v1/gov/proposals/{oid}/ballots",
                params={"wait": "committed"},
                json={"request": base64.b64encode(ballot.encode()).decode()},
            )
            old = await client.sign(
                "member2", member2, Ballot(oid, True), created_ms=int(time.time() * 1000) - 3600_000
            )
            try:
                await client.send(old)
                stale = "accepted"
            except GovClientError as exc:
                stale = exc.code
            return second.status_code, second.json()["code"], stale

    status, code, stale = asyncio.run(replay_and_stale())
    assert (status, code, stale) == (409, "gov.replay", "gov.stale")

    listed = json.loads(cli("gov", "list", *s, "--json").out)["items"]
    assert [p["state"] for p in listed] == ["accepted", "accepted", "open"]
    shown = json.loads(cli("gov", "show", pid, *s).out)
    assert shown["ballots"] == {"member1": "for", "member2": "for"}
    members = json.loads(cli("gov", "members", *s, "--json").out)["items"]
    assert {m["name"]: m["status"] for m in members}["member3"] == "removed"

    # the demo's act: two of the three active members vote a new member in
    from rich.console import Console

    from charter.cli.demo_gov import gov_act

    urls = {"member1": f"http://127.0.0.1:{base}", "member2": api}
    out_file = io.StringIO()
    joined = gov_act(
        home / "stacks/gov", urls, Console(file=out_file, width=200), new_member="member5"
    )
    assert "accepted (2 of 3)" in out_file.getvalue()
    assert (joined.directory / "member.words").is_file()
    members = json.loads(cli("gov", "members", *s, "--json").out)["items"]
    assert {m["name"]: m["status"] for m in members}["member5"] == "active"

    audited = cli("gov", "audit", *s)
    assert audited.code == 0, audited.out + audited.err
    assert "ok audit:" in audited.out and "signatures verified" in audited.out
    assert cli("stack", "down", "gov").code == 0


def _pem(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    from charter.crypto.keyfile import write_private_key

    path = tmp_path / "newcomer.pem"
    write_private_key(path, key)
    return path


def test_member_key_from_stack_words_or_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter.cli.gov import GovUsageError, member_key
    from charter.cli.stack import create_stack

    monkeypatch.setenv("CHARTER_HOME", str(tmp_path))
    directory = create_stack("k", 1, base_port=20200)
    pem = directory / "member1" / "member.pem"
    expected = load_ed25519_private_key(pem).public_key
    assert member_key("k", "member1", None, None)[1].public_key == expected
    words = directory / "member1" / "member.words"
    assert member_key(None, "member1", words, None)[1].public_key == expected
    assert member_key(None, "member1", None, pem)[1].public_key == expected
    with pytest.raises(GovUsageError):
        member_key("k", "nobody", None, None)
