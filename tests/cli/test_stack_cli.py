"""`charter stack init / info / list / export-network` in a temporary CHARTER_HOME."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from charter.crypto.errors import UnsafePermissionsError
from charter.crypto.keyfile import load_ed25519_private_key, load_p256_private_key
from charter.identity.attestation import NODE, AttestationChain, verify_chain
from charter.identity.root import RootIdentity, node_path
from charter.ledger import trust
from charter.node.config import ConfigAttestationError, ConfigConsistencyError, load_node_config
from charter.node.network import load_network, load_node_keys, raft_id_for_key, tls_designator
from charter.ocapn.netlayer.tls import TlsNetlayer

CliRunner = Any


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def stack(cli: CliRunner, home: Path) -> Path:
    result = cli("stack", "init", "demo", "--members", "3", "--base-port", "6200")
    assert result.code == 0, result.err
    return home / "stacks" / "demo"


def read_words(path: Path) -> str:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 1
    return lines[0]


def test_init_creates_the_layout(stack: Path) -> None:
    network = load_network(stack / "network.json")
    assert network.name == "demo"
    assert [m.name for m in network.members] == ["member1", "member2", "member3"]
    assert [n.name for n in network.nodes] == ["member1-node", "member2-node", "member3-node"]
    assert network.voters == tuple(n.raft_id for n in network.nodes)
    ports = [(n.api_url, n.port) for n in network.nodes]
    assert ports == [
        ("http://127.0.0.1:6200", 6201),
        ("http://127.0.0.1:6210", 6211),
        ("http://127.0.0.1:6220", 6221),
    ]
    assert len({n.raft_id for n in network.nodes}) == 3
    # The file is also what receipt verification reads.
    assert len(trust.load_network(stack / "network.json")) == 3
    assert not [p for p in stack.parent.iterdir() if p.name.startswith(".")]


def test_keys_words_chains_and_configs_agree(stack: Path) -> None:
    network = load_network(stack / "network.json")
    for i, node in enumerate(network.nodes):
        member_dir = stack / node.member
        header = (member_dir / "member.words").read_text()
        assert "LOCAL DEVELOPMENT SECRET" in header
        words = read_words(member_dir / "member.words")
        assert len(words.split()) == 24
        root = RootIdentity.from_mnemonic(words)
        assert network.member(node.member).public_key == root.root_key().public_key
        config = load_node_config(member_dir / node.name / "node.toml")
        identity = load_ed25519_private_key(config.keys.identity)
        # The node key is the SLIP-10 derivation of the words, attested by the member root.
        assert identity.public_key == root.derive(node_path(0)).public_key
        assert node.designator == tls_designator(identity.public_key)
        assert node.raft_id == raft_id_for_key(identity.public_key)
        chain = AttestationChain.load(config.keys.attestation.read_bytes())
        verified = verify_chain(
            chain, expected_root=root.root_key().public_key, expected_purpose=NODE
        )
        assert verified.leaf == identity.public_key
        ledger = load_p256_private_key(config.keys.ledger)
        cert = trust.NodeCert.from_pem(config.keys.ledger_cert.read_bytes())
        assert cert.node_id == node.node_id
        assert ledger.public_key.fingerprint() == node.node_id
        assert config.network_file.resolve() == (stack / "network.json").resolve()
        assert config.data_dir.is_dir()
        assert config.api.port == 6200 + 10 * i
        assert config.ocapn.port == node.port == 6201 + 10 * i
        assert config.metrics is not None and config.metrics.port == 6202 + 10 * i


def test_every_secret_is_0600(stack: Path) -> None:
    secrets = sorted(
        p
        for p in stack.rglob("*")
        if p.is_file() and (p.name.endswith(".words") or "PRIVATE KEY" in p.read_text())
    )
    # Per member: words, member key, node identity key, ledger key.
    assert len(secrets) == 12
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in stack.rglob("*"):
        if path.is_file() and path not in secrets:
            assert "PRIVATE" not in path.read_text(), path
        if path.is_dir() and path.name in ("data", "keys"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def _strings(doc: object) -> list[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(doc, list):
        return [s for v in doc for s in _strings(v)]
    return []


def test_export_network_has_only_public_material(
    cli: CliRunner, stack: Path, tmp_path: Path
) -> None:
    out = tmp_path / "exported.json"
    result = cli("stack", "export-network", "demo", "--out", str(out))
    assert result.code == 0, result.err
    text = out.read_text()
    assert text == (stack / "network.json").read_text()
    printed = cli("stack", "export-network", "demo")
    assert printed.code == 0 and printed.out == text
    assert json.loads(text)["charter_network"] == 1
    assert "PRIVATE" not in text
    # No path of the stack, no key file name.
    assert str(stack) not in text and str(stack.parent) not in text
    # Look for file names in the readable strings only: armoured blocks, hex and base32
    # are encodings in which a short word such as "data" turns up by chance.
    readable = [
        v
        for v in _strings(json.loads(text))
        if "-----BEGIN" not in v and not re.fullmatch(r"[0-9a-f]+|[a-z2-7]+", v)
    ]
    for needle in (".pem", ".words", "keys/", "node.toml", "data"):
        assert not [v for v in readable if needle in v], needle
    compact = re.sub(r"\s+", "", text)
    for member_dir in sorted(p for p in stack.iterdir() if p.is_dir()):
        words = read_words(member_dir / "member.words").split()
        for i in range(len(words) - 2):
            assert " ".join(words[i : i + 3]) not in text
        root = RootIdentity.from_mnemonic(" ".join(words))
        assert root.seed.hex() not in text
        for pem in member_dir.rglob("*.pem"):
            if "PRIVATE" not in pem.read_text():
                continue
            key_bytes = (
                load_ed25519_private_key(pem).private_bytes_raw()
                if "identity" in pem.name or "member" in pem.name
                else load_p256_private_key(pem).private_bytes_raw()
            )
            assert key_bytes.hex() not in text
            body = "".join(pem.read_text().splitlines()[1:-1])
            assert body[10:40] not in compact


def test_info_json(cli: CliRunner, stack: Path) -> None:
    result = cli("stack", "info", "demo", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    network = load_network(stack / "network.json")
    assert doc["name"] == "demo"
    assert doc["network_id"] == network.network_id.hex()
    assert [n["name"] for n in doc["nodes"]] == [n.name for n in network.nodes]
    for entry, node in zip(doc["nodes"], network.nodes, strict=True):
        assert {"name", "member", "node_id", "api_url", "pid", "data_dir"} <= set(entry)
        assert entry["member"] == node.member
        assert entry["node_id"] == node.node_id
        assert entry["raft_id"] == node.raft_id
        assert entry["designator"] == node.designator
        assert entry["location"] == {"transport": "tls", "host": "127.0.0.1", "port": node.port}
        assert entry["pid"] is None
        assert Path(entry["data_dir"]).is_dir()


def test_info_reads_live_pid(cli: CliRunner, stack: Path) -> None:
    data = stack / "member2" / "member2-node" / "data"
    (data / "node.pid").write_text(f"{os.getpid()}\n")
    (stack / "member1" / "member1-node" / "data" / "node.pid").write_text("junk")
    # A process that has exited: its pid file is stale.
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (stack / "member3" / "member3-node" / "data" / "node.pid").write_text(done.stdout)
    doc = json.loads(cli("stack", "info", "demo", "--json").out)
    assert [n["pid"] for n in doc["nodes"]] == [None, os.getpid(), None]
    table = cli("stack", "info", "demo")
    assert table.code == 0 and "member2-node" in table.out and str(os.getpid()) in table.out


def test_list(cli: CliRunner, stack: Path, home: Path) -> None:
    assert cli("stack", "init", "other", "--members", "1", "--names", "solo").code == 0
    (home / "stacks" / "broken").mkdir()
    (home / "stacks" / "broken" / "network.json").write_text("{}")
    doc = json.loads(cli("stack", "list", "--json").out)
    by_name = {s["name"]: s for s in doc["stacks"]}
    assert by_name["demo"] == {"name": "demo", "members": 3, "nodes": 3}
    assert by_name["other"] == {"name": "other", "members": 1, "nodes": 1}
    assert "node.config.field" in by_name["broken"]["error"]
    text = cli("stack", "list").out
    assert "demo: 3 members, 3 nodes" in text and "broken: unreadable" in text


def test_list_when_empty(cli: CliRunner, home: Path) -> None:
    assert "no stacks" in cli("stack", "list").out
    assert json.loads(cli("stack", "list", "--json").out) == {"stacks": []}


def test_names_option(cli: CliRunner, home: Path) -> None:
    result = cli("stack", "init", "orgs", "--members", "2", "--names", "org-a, org-b")
    assert result.code == 0, result.err
    network = load_network(home / "stacks" / "orgs" / "network.json")
    assert [m.name for m in network.members] == ["org-a", "org-b"]
    assert [n.name for n in network.nodes] == ["org-a-node", "org-b-node"]


def test_force_replaces(cli: CliRunner, stack: Path) -> None:
    before = load_network(stack / "network.json")
    refused = cli("stack", "init", "demo", "--members", "2")
    assert "already exists" in refused.error_line()
    assert load_network(stack / "network.json") == before
    assert cli("stack", "init", "demo", "--members", "2", "--force").code == 0
    after = load_network(stack / "network.json")
    assert len(after.nodes) == 2 and after.network_id != before.network_id
    assert not (stack / "member3").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["init", "../escape"], "not a valid name"),
        (["init", "a/b"], "not a valid name"),
        (["init", ".hidden"], "not a valid name"),
        (["init", "UPPER"], "not a valid name"),
        (["init", "x", "--members", "0"], "--members"),
        (["init", "x", "--members", "65"], "--members"),
        (["init", "x", "--base-port", "80"], "1024..65535"),
        (["init", "x", "--base-port", "65530"], "1024..65535"),
        (["init", "x", "--members", "2", "--names", "a"], "--names lists 1"),
        (["init", "x", "--members", "2", "--names", "a,a"], "twice"),
        (["init", "x", "--members", "2", "--names", "a,B!"], "not a valid name"),
        (["info", "missing"], "no stack named 'missing'"),
        (["info", "../x"], "not a valid name"),
        (["export-network", "missing"], "no stack named"),
    ],
)
def test_error_paths(cli: CliRunner, home: Path, args: list[str], needle: str) -> None:
    result = cli("stack", *args)
    line = result.error_line()
    assert needle in line
    assert line.startswith("error [node.config.")
    assert not (home / "stacks" / "x").exists()
    assert not (home / "escape").exists() and not (home / "stacks" / ".hidden").exists()


def test_damaged_network_file_is_one_line(cli: CliRunner, stack: Path) -> None:
    path = stack / "network.json"
    doc = json.loads(path.read_text())
    doc["nodes"][1]["location"]["port"] = "many"
    path.write_text(json.dumps(doc))
    line = cli("stack", "info", "demo").error_line()
    assert "nodes[1].location.port" in line


def test_damaged_node_config_is_one_line(cli: CliRunner, stack: Path) -> None:
    (stack / "member2" / "member2-node" / "node.toml").write_text("charter_node = 1\n[")
    assert "not valid TOML" in cli("stack", "info", "demo", "--json").error_line()


def test_export_to_unwritable_place(cli: CliRunner, stack: Path, tmp_path: Path) -> None:
    line = cli(
        "stack", "export-network", "demo", "--out", str(tmp_path / "no" / "x.json")
    ).error_line()
    assert "cannot write" in line


def test_home_that_is_a_file(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CHARTER_HOME", str(blocker))
    assert "cannot create a stack" in cli("stack", "init", "demo").error_line()
    assert "no stack named" in cli("stack", "info", "demo").error_line()


def test_failure_midway_leaves_old_stack_and_no_debris(
    cli: CliRunner, stack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter.cli import stack as stack_cli

    before = (stack / "network.json").read_text()
    real = stack_cli._create_member
    calls: list[str] = []

    def flaky(root: Path, name: str, member: str, ports: tuple[int, int, int]) -> Any:
        calls.append(member)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(root, name, member, ports)

    monkeypatch.setattr(stack_cli, "_create_member", flaky)
    line = cli("stack", "init", "demo", "--force").error_line()
    assert "No space left on device" in line
    assert (stack / "network.json").read_text() == before
    assert sorted(p.name for p in stack.parent.iterdir()) == ["demo"]


def test_node_keys_load_and_match_the_network(stack: Path) -> None:
    network = load_network(stack / "network.json")
    for node in network.nodes:
        config = load_node_config(stack / node.member / node.name / "node.toml")
        keys = load_node_keys(config, network)
        assert keys.entry == node
        assert keys.identity.public_key == node.identity
        assert keys.ledger.public_key.fingerprint() == node.node_id
        assert keys.attestation == node.attestation


def _config(stack: Path, member: str) -> Any:
    return load_node_config(stack / member / f"{member}-node" / "node.toml")


def test_node_keys_refuse_another_nodes_keys(stack: Path) -> None:
    network = load_network(stack / "network.json")
    one, two = _config(stack, "member1"), _config(stack, "member2")
    swaps = [
        (
            "identity",
            dataclasses.replace(one.keys, identity=two.keys.identity),
            ConfigConsistencyError,
            "identity key",
        ),
        (
            "ledger",
            dataclasses.replace(one.keys, ledger=two.keys.ledger),
            ConfigConsistencyError,
            "ledger key",
        ),
        (
            "cert",
            dataclasses.replace(one.keys, ledger_cert=two.keys.ledger_cert),
            ConfigConsistencyError,
            "ledger key",
        ),
        (
            "chain",
            dataclasses.replace(one.keys, attestation=two.keys.attestation),
            ConfigAttestationError,
            "attestation chain",
        ),
    ]
    for _, keys, error, needle in swaps:
        with pytest.raises(error, match=needle):
            load_node_keys(dataclasses.replace(one, keys=keys), network)
    with pytest.raises(ConfigConsistencyError, match="acts for"):
        load_node_keys(dataclasses.replace(one, member="member2"), network)
    with pytest.raises(ConfigConsistencyError, match="no node named"):
        load_node_keys(dataclasses.replace(one, name="ghost"), network)


def test_node_keys_refuse_a_readable_key_file(stack: Path) -> None:
    network = load_network(stack / "network.json")
    config = _config(stack, "member1")
    config.keys.identity.chmod(0o644)
    with pytest.raises(UnsafePermissionsError, match="0600"):
        load_node_keys(config, network)


def test_tls_netlayer_of_a_node_presents_its_network_designator(stack: Path) -> None:
    network = load_network(stack / "network.json")
    config = _config(stack, "member2")
    keys = load_node_keys(config, network)
    layer = TlsNetlayer(keys.identity.to_cryptography(), config.ocapn.host, config.ocapn.port)
    assert layer.designator == keys.entry.designator
    location = network.raft_config().peers[keys.entry.raft_id]
    assert location.designator == layer.designator
    assert location.hints == {"host": config.ocapn.host, "port": str(config.ocapn.port)}
