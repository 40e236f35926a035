"""The genesis constitution in the network file, as `charter stack init` writes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.cli.stack import NETWORK_FILE, create_stack
from charter.governance.errors import GenesisError
from charter.governance.genesis import genesis_from_network, parse_section
from charter.governance.model import Genesis
from charter.ledger.engine.nodes import NodeStatus
from charter.node.measurement import measure
from charter.node.network import load_network, parse_network


def test_stack_init_writes_a_constitution_that_allows_its_own_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path))
    before = measure()
    directory = create_stack("g", 3, base_port=20000)
    network = load_network(directory / NETWORK_FILE)
    assert network.constitution is not None
    genesis = genesis_from_network(network)
    assert genesis.constitution.measurements in ((before,), (measure(),))
    assert [m.name for m in genesis.members] == ["member1", "member2", "member3"]
    assert {n.status for n in genesis.nodes} == {NodeStatus.TRUSTED}
    assert genesis.network_id == network.network_id
    # the section survives the network file's own round trip, and genesis is deterministic
    again = parse_network(network.to_json())
    assert again.constitution == network.constitution
    assert genesis_from_network(again).encode() == genesis.encode()
    assert Genesis.decode(genesis.encode()).encode() == genesis.encode()


def test_a_file_without_the_section_gets_defaults_and_a_bad_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path))
    doc = load_network(create_stack("h", 1, base_port=20100) / NETWORK_FILE).to_json()
    del doc["constitution"]
    plain = genesis_from_network(parse_network(doc))
    assert plain.constitution.measurements == ()
    assert plain.constitution.threshold("anything").rule == "majority"
    with pytest.raises(GenesisError):
        parse_section({"thresholds": {"default": {"rule": "sometimes"}}})
    doc["constitution"] = {"thresholds": {"default": {"rule": "count", "count": 2}}}
    with pytest.raises(GenesisError, match="cannot be met"):
        genesis_from_network(parse_network(doc))
