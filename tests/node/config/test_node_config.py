"""The per-node TOML config: defaults, round trip, relative paths, typed errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from charter.node.config import (
    DEFAULT_ELECTION_TICKS,
    DEFAULT_TICK_MS,
    ConfigConsistencyError,
    ConfigError,
    ConfigFieldError,
    ConfigReadError,
    ConfigVersionError,
    KeyPaths,
    Listen,
    NodeConfig,
    Tuning,
    load_node_config,
)

MINIMAL = """\
charter_node = 1
name = "org-a-node"
member = "org-a"
network_file = "../network.json"
data_dir = "data"

[keys]
identity = "keys/identity.pem"
ledger = "keys/ledger.pem"
ledger_cert = "keys/ledger.crt"
attestation = "/abs/node.chain"

[listen.ocapn]
host = "127.0.0.1"
port = 5101

[listen.api]
host = "localhost"
port = 5100
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node" / "node.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_gets_defaults_and_absolute_paths(tmp_path: Path) -> None:
    config = load_node_config(write(tmp_path, MINIMAL))
    base = tmp_path / "node"
    assert config.name == "org-a-node" and config.member == "org-a"
    assert config.network_file == base / "../network.json"
    assert config.data_dir == base / "data"
    assert config.keys.identity == base / "keys/identity.pem"
    assert config.keys.attestation == Path("/abs/node.chain")
    assert config.ocapn == Listen("127.0.0.1", 5101)
    assert config.api == Listen("localhost", 5100)
    assert config.metrics is None
    assert config.tuning == Tuning()
    assert config.tuning.tick_ms == DEFAULT_TICK_MS
    assert config.tuning.election_ticks == DEFAULT_ELECTION_TICKS
    assert config.pid_file == base / "data" / "node.pid"


def test_round_trip_keeps_relative_paths(tmp_path: Path) -> None:
    base = tmp_path / "stack" / "m" / "n"
    config = NodeConfig(
        name="m-node",
        member="m",
        network_file=tmp_path / "stack" / "network.json",
        data_dir=base / "data",
        keys=KeyPaths(
            identity=base / "keys" / "identity.pem",
            ledger=base / "keys" / "ledger.pem",
            ledger_cert=base / "keys" / "ledger.crt",
            attestation=base / "keys" / "node.chain",
        ),
        ocapn=Listen("::1", 0),
        api=Listen("127.0.0.1", 8080),
        metrics=Listen("127.0.0.1", 9090),
        tuning=Tuning(
            tick_ms=20,
            election_ticks=15,
            heartbeat_ticks=3,
            signature_interval_tx=50,
            signature_interval_ms=250,
        ),
    )
    base.mkdir(parents=True)
    path = base / "node.toml"
    config.save(path)
    text = path.read_text()
    assert str(tmp_path) not in text
    assert 'network_file = "../../network.json"' in text
    loaded = load_node_config(path)
    assert loaded.network_file.resolve() == config.network_file.resolve()
    assert loaded.keys.ledger.resolve() == config.keys.ledger.resolve()
    assert (loaded.ocapn, loaded.api, loaded.metrics) == (config.ocapn, config.api, config.metrics)
    assert loaded.tuning == config.tuning
    # Moving the whole tree keeps the config valid.
    moved = tmp_path / "moved"
    (tmp_path / "stack").rename(moved)
    again = load_node_config(moved / "m" / "n" / "node.toml")
    assert again.network_file.resolve() == (moved / "network.json").resolve()


def _edit(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new)


CASES = [
    ("no version", _edit("charter_node = 1\n", ""), ConfigFieldError, "charter_node"),
    (
        "version str",
        _edit("charter_node = 1", 'charter_node = "1"'),
        ConfigFieldError,
        "charter_node",
    ),
    ("version 9", _edit("charter_node = 1", "charter_node = 9"), ConfigVersionError, "format 9"),
    ("bad name", _edit('name = "org-a-node"', 'name = "A/B"'), ConfigFieldError, "name:"),
    ("bad member", _edit('member = "org-a"', "member = 3"), ConfigFieldError, "member:"),
    ("empty path", _edit('data_dir = "data"', 'data_dir = ""'), ConfigFieldError, "data_dir"),
    ("no keys", _edit("[keys]\n", "[other]\n"), ConfigFieldError, "keys"),
    (
        "missing key path",
        _edit('ledger_cert = "keys/ledger.crt"\n', ""),
        ConfigFieldError,
        "keys.ledger_cert: required",
    ),
    ("unknown key", MINIMAL + 'colour = "red"\n', ConfigFieldError, "unknown field"),
    ("port str", _edit("port = 5101", 'port = "5101"'), ConfigFieldError, "listen.ocapn.port"),
    ("port big", _edit("port = 5101", "port = 65536"), ConfigFieldError, "listen.ocapn.port"),
    ("port neg", _edit("port = 5100", "port = -1"), ConfigFieldError, "listen.api.port"),
    (
        "host bad",
        _edit('host = "localhost"', 'host = "http://x"'),
        ConfigFieldError,
        "listen.api.host",
    ),
    ("no api", _edit("[listen.api]", "[listen.rest]"), ConfigFieldError, "listen.api"),
    (
        "same port",
        _edit("port = 5101", "port = 5100").replace('"localhost"', '"127.0.0.1"'),
        ConfigConsistencyError,
        "both listen",
    ),
    ("tick zero", MINIMAL + "[raft]\ntick_ms = 0\n", ConfigFieldError, "raft.tick_ms"),
    ("tick float", MINIMAL + "[raft]\ntick_ms = 1.5\n", ConfigFieldError, "raft.tick_ms"),
    ("heartbeat", MINIMAL + "[raft]\nheartbeat_ticks = 10\n", ConfigConsistencyError, "heartbeat"),
    ("raft extra", MINIMAL + "[raft]\nfoo = 1\n", ConfigFieldError, "raft.foo"),
    ("raft scalar", MINIMAL + "raft = 3\n", ConfigFieldError, "raft"),
    ("bad toml", MINIMAL + "[[[\n", ConfigReadError, "not valid TOML"),
]


@pytest.mark.parametrize(
    ("text", "error", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_errors(tmp_path: Path, text: str, error: type[ConfigError], needle: str) -> None:
    with pytest.raises(error) as caught:
        load_node_config(write(tmp_path, text))
    assert needle in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.code.startswith("node.config")


def test_missing_file_and_binary(tmp_path: Path) -> None:
    with pytest.raises(ConfigReadError, match="does not exist"):
        load_node_config(tmp_path / "absent.toml")
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigReadError, match="not valid TOML"):
        load_node_config(path)


def test_toml_writer_escapes_strings(tmp_path: Path) -> None:
    odd = tmp_path / 'dir "quoted" \\ back'
    config = load_node_config(write(tmp_path, MINIMAL))
    written = NodeConfig(
        name=config.name,
        member=config.member,
        network_file=odd / "network.json",
        data_dir=config.data_dir,
        keys=config.keys,
        ocapn=config.ocapn,
        api=config.api,
    )
    text = written.to_toml(Path("/"))
    assert tomllib.loads(text)["network_file"] == str(odd / "network.json").lstrip("/")


def test_unknown_key_with_newline_stays_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigFieldError) as caught:
        load_node_config(write(tmp_path, MINIMAL.replace("[keys]\n", '[keys]\n"a\\nb" = 1\n')))
    assert caught.value.message == "keys.'a\\nb': unknown field"
