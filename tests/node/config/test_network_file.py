"""The network file: round trips, derived ids, and one typed error per bad field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from charter.crypto.certs import self_signed_certificate
from charter.crypto.keys import Ed25519PrivateKey, P256PrivateKey
from charter.identity.attestation import DEVICE, NODE, attest
from charter.ledger import trust
from charter.node.config import (
    ConfigAttestationError,
    ConfigConsistencyError,
    ConfigError,
    ConfigFieldError,
    ConfigReadError,
    ConfigVersionError,
)
from charter.node.network import load_network, parse_network, raft_id_for_key, tls_designator
from charter.ocapn.netlayer.tls import TLS_TRANSPORT

Doc = dict[str, Any]


def test_round_trip(sample: Any, tmp_path: Path) -> None:
    path = tmp_path / "network.json"
    sample.network.save(path)
    loaded = load_network(path)
    assert loaded == sample.network
    assert loaded.to_text() == sample.network.to_text()
    assert [m.name for m in loaded.members] == ["org-0", "org-1", "org-2"]
    assert loaded.member("org-1").roles == ("member", "operator")
    assert loaded.voters == tuple(n.raft_id for n in loaded.nodes)


def test_node_facts_follow_from_keys(sample: Any) -> None:
    for node, key in zip(sample.network.nodes, sample.node_keys, strict=True):
        digest = hashlib.sha256(key.public_key.raw).digest()
        assert node.raft_id == int.from_bytes(digest[:8], "big") >> 11
        assert 0 < node.raft_id < 2**53
        assert node.designator == tls_designator(key.public_key)
        assert len(node.designator) == 52
        assert node.node_id == trust.NodeCert.from_pem(node.cert.pem()).node_id


def test_raft_ids_distinct_and_stable() -> None:
    keys = [Ed25519PrivateKey.from_raw(bytes([i]) * 32) for i in range(1, 201)]
    ids = [raft_id_for_key(k.public_key) for k in keys]
    assert len(set(ids)) == len(ids)
    assert ids == [raft_id_for_key(k.public_key) for k in keys]
    # Pinned: a change of the derivation would silently renumber every network.
    fixed = Ed25519PrivateKey.from_raw(bytes(32)).public_key
    expected = int.from_bytes(hashlib.sha256(fixed.raw).digest()[:8], "big") >> 11
    assert raft_id_for_key(fixed) == expected
    assert raft_id_for_key(fixed) == 690249162082666


def test_raft_config_and_trusted_nodes(sample: Any, tmp_path: Path) -> None:
    net = sample.network
    config = net.raft_config()
    assert config.network_id == bytes(range(16))
    for node in net.nodes:
        loc = config.peers[node.raft_id]
        assert loc.transport == TLS_TRANSPORT
        assert loc.designator == node.designator
        assert loc.hints == {"host": node.host, "port": str(node.port)}
        assert config.node_for(TLS_TRANSPORT, node.designator) == node.raft_id
    assert {c.node_id for c in net.trusted_nodes()} == {n.node_id for n in net.nodes}
    # The same file serves receipt verification unchanged.
    path = tmp_path / "network.json"
    net.save(path)
    assert {c.node_id for c in trust.load_network(path)} == {n.node_id for n in net.nodes}


def _set(path: str, value: object) -> Callable[[Doc], None]:
    """Set a dotted/indexed path, e.g. ``nodes.1.location.port``; a value of DELETE removes it."""

    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if value is DELETE:
            del target[key]
        else:
            target[key] = value

    return apply


DELETE = object()


def _swap(a: str, b: str, field: str) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        i, j = int(a), int(b)
        doc["nodes"][i][field] = doc["nodes"][j][field]

    return apply


def _copy_member_key(doc: Doc) -> None:
    doc["members"][1]["public_key"] = doc["members"][0]["public_key"]


CASES: list[tuple[str, Callable[[Doc], None], type[ConfigError], str]] = [
    ("version missing", _set("charter_network", DELETE), ConfigFieldError, "charter_network"),
    ("version bool", _set("charter_network", True), ConfigFieldError, "charter_network"),
    ("version 2", _set("charter_network", 2), ConfigVersionError, "format 2"),
    ("unknown top field", _set("extra", 1), ConfigFieldError, "extra: unknown field"),
    ("bad name", _set("name", "../etc"), ConfigFieldError, "name:"),
    ("network id short", _set("network_id", "abcd"), ConfigFieldError, "network_id"),
    ("network id upper", _set("network_id", "AB" * 16), ConfigFieldError, "network_id"),
    ("members not list", _set("members", {}), ConfigFieldError, "members: expected an array"),
    ("members empty", _set("members", []), ConfigFieldError, "members:"),
    ("member not object", _set("members.0", "x"), ConfigFieldError, "members[0]"),
    ("member bad key", _set("members.0.public_key", "zz" * 32), ConfigFieldError, "public_key"),
    ("member key short", _set("members.0.public_key", "ab"), ConfigFieldError, "public_key"),
    ("member no roles", _set("members.0.roles", []), ConfigFieldError, "roles"),
    ("member bad role", _set("members.0.roles", ["Admin!"]), ConfigFieldError, "roles[0]"),
    ("member twice role", _set("members.0.roles", ["a", "a"]), ConfigFieldError, "twice"),
    ("member unknown", _set("members.0.colour", "red"), ConfigFieldError, "members[0].colour"),
    ("member dup name", _set("members.1.name", "org-0"), ConfigConsistencyError, "twice"),
    ("member dup key", _copy_member_key, ConfigConsistencyError, "same public key"),
    ("nodes empty", _set("nodes", []), ConfigFieldError, "nodes:"),
    ("node no name", _set("nodes.0.name", DELETE), ConfigFieldError, "nodes[0].name"),
    ("node no member", _set("nodes.0.member", "ghost"), ConfigConsistencyError, "ghost"),
    ("node bad identity", _set("nodes.0.identity", "abc"), ConfigFieldError, "identity"),
    ("node raft id str", _set("nodes.0.raft_id", "1"), ConfigFieldError, "raft_id"),
    ("node raft id 0", _set("nodes.0.raft_id", 0), ConfigFieldError, "raft_id"),
    ("node raft id wrong", _set("nodes.0.raft_id", 12345), ConfigConsistencyError, "raft_id"),
    ("node transport", _set("nodes.0.location.transport", "tcp"), ConfigFieldError, "transport"),
    ("node host", _set("nodes.0.location.host", "a b"), ConfigFieldError, "location.host"),
    ("node host dots", _set("nodes.0.location.host", "a..b"), ConfigFieldError, "location.host"),
    ("node host dash", _set("nodes.0.location.host", "-a.b"), ConfigFieldError, "location.host"),
    ("node port 0", _set("nodes.0.location.port", 0), ConfigFieldError, "location.port"),
    ("node port big", _set("nodes.0.location.port", 70000), ConfigFieldError, "location.port"),
    ("node loc extra", _set("nodes.0.location.path", "/"), ConfigFieldError, "location.path"),
    ("api no port", _set("nodes.0.api_url", "http://h/"), ConfigFieldError, "api_url"),
    ("api scheme", _set("nodes.0.api_url", "ftp://h:1"), ConfigFieldError, "api_url"),
    ("api creds", _set("nodes.0.api_url", "http://u:p@h:1"), ConfigFieldError, "api_url"),
    ("api bad port", _set("nodes.0.api_url", "http://h:99999"), ConfigFieldError, "api_url"),
    ("cert junk", _set("nodes.0.cert", "-----BEGIN x"), ConfigFieldError, "nodes[0].cert"),
    ("node_id wrong", _set("nodes.0.node_id", "00" * 32), ConfigConsistencyError, "node_id"),
    ("node cert of other", _swap("0", "1", "cert"), ConfigConsistencyError, "node_id"),
    ("chain junk", _set("nodes.0.attestation", "nope"), ConfigAttestationError, "attestation"),
    ("chain other member", _swap("0", "1", "attestation"), ConfigAttestationError, "org-0"),
    ("dup location", _set("nodes.1.location.port", 7001), ConfigConsistencyError, "location"),
    ("voters empty", _set("voters", []), ConfigFieldError, "voters"),
    ("voter unknown", _set("voters.0", 5), ConfigConsistencyError, "voters[0]"),
    ("voter str", _set("voters.0", "5"), ConfigFieldError, "voters[0]"),
]


@pytest.mark.parametrize(
    ("mutate", "error", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_bad_field_is_a_typed_one_line_error(
    sample: Any, mutate: Callable[[Doc], None], error: type[ConfigError], needle: str
) -> None:
    doc = sample.doc()
    mutate(doc)
    with pytest.raises(error) as caught:
        parse_network(doc)
    assert needle in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.code.startswith("node.config.")


def test_duplicate_voter(sample: Any) -> None:
    doc = sample.doc()
    doc["voters"] = [doc["voters"][0], doc["voters"][0]]
    with pytest.raises(ConfigConsistencyError, match="twice"):
        parse_network(doc)


def test_duplicate_node_identity(sample: Any) -> None:
    doc = sample.doc()
    doc["nodes"][1] = dict(
        doc["nodes"][0], name="copy", location={**doc["nodes"][0]["location"], "port": 9}
    )
    with pytest.raises(ConfigConsistencyError, match="same raft id"):
        parse_network(doc)


def _rebuilt_node(sample: Any, chain: Any, identity: Ed25519PrivateKey) -> Doc:
    doc = sample.doc()
    node = doc["nodes"][0]
    node["identity"] = tls_designator(identity.public_key)
    node["raft_id"] = raft_id_for_key(identity.public_key)
    node["attestation"] = chain.to_text()
    return doc


def test_chain_for_another_key(sample: Any) -> None:
    other = Ed25519PrivateKey.generate()
    chain = attest(sample.member_keys[0], other.public_key, NODE, epoch=0)
    doc = sample.doc()
    doc["nodes"][0]["attestation"] = chain.to_text()
    with pytest.raises(ConfigAttestationError, match="another key"):
        parse_network(doc)


def test_chain_with_wrong_purpose(sample: Any) -> None:
    node = Ed25519PrivateKey.generate()
    chain = attest(sample.member_keys[0], node.public_key, DEVICE, epoch=0)
    with pytest.raises(ConfigAttestationError, match="expected 'node'"):
        parse_network(_rebuilt_node(sample, chain, node))


def test_expired_chain(sample: Any) -> None:
    doc = sample.doc()
    with pytest.raises(ConfigAttestationError, match="valid from"):
        parse_network(doc, now=2**40)


def test_node_key_may_not_be_a_member_key(sample: Any) -> None:
    root = sample.member_keys[0]
    # The member root vouches for itself as a node: refused, the roles stay apart.
    chain = attest(root, root.public_key, NODE, epoch=0)
    with pytest.raises(ConfigConsistencyError, match="member key"):
        parse_network(_rebuilt_node(sample, chain, root))


def test_duplicate_ledger_key(sample: Any) -> None:
    doc = sample.doc()
    doc["nodes"][1]["cert"] = doc["nodes"][0]["cert"]
    doc["nodes"][1]["node_id"] = doc["nodes"][0]["node_id"]
    with pytest.raises(ConfigConsistencyError, match="ledger certificate key"):
        parse_network(doc)


def test_ledger_cert_must_be_p256(sample: Any) -> None:
    ed_cert = self_signed_certificate(Ed25519PrivateKey.generate())
    doc = sample.doc()
    doc["nodes"][0]["cert"] = ed_cert.to_pem().decode()
    with pytest.raises(ConfigFieldError, match="P-256"):
        parse_network(doc)
    assert P256PrivateKey  # the supported kind, as generated by stack init


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "expected an object"),
        (b'{"nodes": []}', "charter_network"),
        (b'{"charter_network": 1, "charter_network": 1}', "appears twice"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "network.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=needle):
        load_network(path)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigReadError, match="does not exist"):
        load_network(tmp_path / "absent.json")
    with pytest.raises(ConfigReadError, match="is a directory"):
        load_network(tmp_path)


def test_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * (1 << 20) + b"{}")
    with pytest.raises(ConfigReadError, match="too large"):
        load_network(path)


def test_written_file_is_json_with_only_public_fields(sample: Any) -> None:
    doc = json.loads(sample.network.to_text())
    assert set(doc) == {"charter_network", "name", "network_id", "members", "nodes", "voters"}
    assert set(doc["nodes"][0]) == {
        "name",
        "member",
        "raft_id",
        "node_id",
        "identity",
        "location",
        "api_url",
        "cert",
        "attestation",
    }
    text = sample.network.to_text()
    for key in [*sample.member_keys, *sample.node_keys]:
        assert key.private_bytes_raw().hex() not in text
    assert "PRIVATE KEY" not in text
