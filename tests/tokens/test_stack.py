"""Tokens on a real stack of three node processes: the CLI and the demo act."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from charter.cli.demo_net import free_base_port, until
from charter.cli.demo_tokens import tokens_act
from charter.cli.stack import StackNode, open_stack
from charter.node.supervisor import kill_group, read_pid

from ..conftest import CliRunner

NAME = "tok"
UP_TIMEOUT = 40.0


def charter(home: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CHARTER_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-c", "from charter.cli.main import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[StackNode]]]:
    home = tmp_path_factory.mktemp("tokens-home")
    base = free_base_port(3)
    init = charter(home, "stack", "init", NAME, "--members", "3", "--base-port", str(base))
    assert init.returncode == 0, init.stderr
    old = os.environ.get("CHARTER_HOME")
    os.environ["CHARTER_HOME"] = str(home)
    try:
        _, nodes = open_stack(NAME)
    finally:
        if old is None:
            del os.environ["CHARTER_HOME"]
        else:
            os.environ["CHARTER_HOME"] = old
    try:
        up = charter(
            home, "stack", "up", NAME, "--timeout", str(UP_TIMEOUT), timeout=UP_TIMEOUT + 30
        )
        assert up.returncode == 0, up.stdout + up.stderr
        yield home, nodes
    finally:
        for n in nodes:
            pid = read_pid(n.config.data_dir / "node.pid")
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    kill_group(pid)


def test_cli_against_the_stack(
    stack: tuple[Path, list[StackNode]], cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, nodes = stack
    monkeypatch.setenv("CHARTER_HOME", str(home))
    m1 = ("--stack", NAME, "--member", "member1")
    m2 = ("--stack", NAME, "--member", "member2")
    r = cli("tokens", "pool", "create", "gold", "--decimals", "3", "--max-supply", "5000", *m1)
    assert r.code == 0 and "ok pool gold created" in r.out, r.err
    assert cli("tokens", "mint", "gold", "member1", "4000", *m1).code == 0
    r = cli("tokens", "transfer", "gold", "member1", "member2/vault", "1500", *m1)
    assert r.code == 0 and "Committed" in r.out, r.err
    err = cli("tokens", "transfer", "gold", "member1", "member2", "1", *m2).error_line()
    assert "[tokens.authority]" in err
    err = cli("tokens", "mint", "gold", "member1", "2000", *m1).error_line()
    assert "[tokens.supply]" in err
    err = cli("tokens", "mint", "gold", "member1", "12.5", *m1).error_line()
    assert "[tokens.invalid]" in err
    assert cli("tokens", "approve", "gold", "member1", "member2", "--amount", "10", *m1).code == 0
    r = cli("tokens", "transfer", "gold", "member1", "member3", "10", "--operator", "member2", *m2)
    assert r.code == 0, r.err
    assert cli("tokens", "burn", "gold", "member1", "90", *m1).code == 0
    api = ("--api", nodes[2].entry.api_url)
    r = cli("tokens", "balances", "--pool", "gold", "--json", *api)
    assert r.code == 0
    assert '"member2/vault"' in r.out and '"2400"' in r.out, r.out
    r = cli("tokens", "transfers", "--pool", "gold", "--account", "member3", "--json", *api)
    assert r.code == 0 and '"operator": "member2"' in r.out, r.out
    r = cli("tokens", "pool", "list", *api)
    assert r.code == 0 and "gold" in r.out
    r = cli("tokens", "supply", "gold", *api)
    assert "total 3910" in r.out, r.out
    assert "--member" in cli("tokens", "balances", "--stack", NAME).error_line()


def test_cli_transfer_carrying_a_message(
    stack: tuple[Path, list[StackNode]], cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, nodes = stack
    monkeypatch.setenv("CHARTER_HOME", str(home))
    m1 = ("--stack", NAME, "--member", "member1")
    assert cli("tokens", "pool", "create", "remit", *m1).code == 0
    assert cli("tokens", "mint", "remit", "member1", "100", *m1).code == 0
    data = ("--data", '{"invoice": "INV-9"}', "--data", '"thanks"')
    r = cli(
        "tokens", "transfer", "remit", "member1", "member2", "60",
        "--topic", "remittance", "--tag", "inv", *data, "--private-to", "member2", *m1,
    )  # fmt: skip
    assert r.code == 0, r.err
    found = re.search(
        r"ok message (\S+) confirmed with tx (\d+\.\d+) \(private to member2\)", r.out
    )
    assert found, r.out
    mid, tx = found.groups()
    url = {n.entry.member: n.entry.api_url for n in nodes}

    def confirmed() -> dict[str, Any] | None:
        doc: dict[str, Any] = httpx.get(
            f"{url['member2']}/api/v1/messages/{mid}", timeout=10
        ).json()
        return doc if doc.get("state") == "confirmed" else None

    got = until(confirmed, 10.0, f"message {mid} confirmed at member2")
    assert (
        got["state"] == "confirmed" and got["pin"]["tx_id"] == tx and got["topic"] == "remittance"
    )
    assert httpx.get(f"{url['member3']}/api/v1/messages/{mid}", timeout=10).status_code == 404
    refused = cli(
        "tokens", "transfer", "remit", "member1", "member2", "1000",
        "--topic", "remittance", *data, "--private-to", "member2", *m1,
    ).error_line()  # fmt: skip
    assert refused.startswith("error [tokens.balance]") and refused.endswith(" failed)"), refused
    bad = cli("tokens", "transfer", "remit", "member1", "member2", "1", "--data", "{nope", *m1)
    assert bad.code != 0 and bad.error_line().startswith("error [cli.tokens.usage] --data #1")
    bare = cli("tokens", "transfer", "remit", "member1", "member2", "1", "--topic", "t", *m1)
    assert bare.code != 0 and "--data" in bare.error_line()


def test_demo_act_trade_finance(stack: tuple[Path, list[StackNode]]) -> None:
    _, nodes = stack
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    urls = {n.entry.member: n.entry.api_url for n in nodes}
    did = tokens_act(console, urls)
    text = out.getvalue()
    print(text)
    assert "all 3 nodes agree" in text and "receipt" in text, text
    assert did["balances"]["member3"] == 200_000_00
    assert (
        f"member2 received the buyer's remittance {did['remittance'][:8]} confirmed with the"
        f" payment (tx {did['payment_tx']}); member3 sees only its pin"
    ) in text, text
