"""A joined node's files: its keys checked against join.json, its view of the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.cli.stack import create_stack
from charter.identity.root import RootIdentity
from charter.node.config import ConfigConsistencyError, ConfigFieldError, load_node_config
from charter.node.join import (
    JoinPeer,
    JoinRecord,
    NodePlan,
    bootstrap_conf,
    is_joined,
    ledger_view,
    load_keys,
    prepare_node,
    read_words,
)
from charter.node.network import load_network


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "home"))
    return create_stack("files", 2, base_port=21000)


def test_a_joined_node_runs_from_its_own_files_and_join_record(stack: Path) -> None:
    _, words = RootIdentity.generate()
    plan = NodePlan(stack / "new" / "new-node", "new-node", "new", "127.0.0.1", 21020, 21021)
    config_path = prepare_node(plan, stack / "network.json", words)
    assert prepare_node(plan, stack / "network.json", words) == config_path  # reused
    config = load_node_config(config_path)
    network = load_network(config.network_file)
    assert is_joined(config, network)
    with pytest.raises(ConfigConsistencyError, match="charter node join"):
        load_keys(config, network)

    peer = network.nodes[0]
    record = JoinRecord(
        network.network_id,
        "new-node",
        "new",
        (JoinPeer(peer.name, peer.designator, peer.host, peer.port, peer.api_url),),
    )
    record.save(config.data_dir)
    assert JoinRecord.load(config.data_dir) == record
    keys = load_keys(config, network)
    assert keys.entry.name == "new-node" and keys.entry.port == 21021
    assert bootstrap_conf(network, keys.entry) is None
    view = ledger_view(network, keys.entry)
    assert [n.name for n in view.nodes] == [*(n.name for n in network.nodes), "new-node"]
    assert view.voters == network.voters

    genesis = network.nodes[1]
    assert ledger_view(network, genesis) is network
    conf = bootstrap_conf(network, genesis)
    assert conf is not None and conf.voters == frozenset(network.voters)

    # a record for another network is refused
    JoinRecord(b"\x00" * 16, "new-node", "new").save(config.data_dir)
    with pytest.raises(ConfigConsistencyError, match="is for node"):
        load_keys(config, network)
    (config.data_dir / "join.json").write_text('{"charter_join": 9}', encoding="utf-8")
    with pytest.raises(ConfigFieldError):
        load_keys(config, network)


def test_words_files_may_carry_comments(tmp_path: Path) -> None:
    _, words = RootIdentity.generate()
    path = tmp_path / "member.words"
    path.write_text(f"# a secret\n# of member x\n{words}\n", encoding="utf-8")
    assert read_words(path) == words
