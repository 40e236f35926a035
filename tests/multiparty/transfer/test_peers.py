"""Which nodes a transfer talks to follows the ledger: genesis, trusted, retired, moved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from charter.crypto.certs import self_signed_certificate
from charter.crypto.keys import Ed25519PrivateKey, P256PrivateKey
from charter.ledger.engine.nodes import DirectoryEntry, NodeStatus
from charter.ledger.trust import NodeCert
from charter.multiparty.transfer import LedgerPeers
from charter.node.ledger_service import LedgerMember
from charter.node.membership import tls_location
from charter.node.network import raft_id_for_key
from charter.node.raft_transport import RaftNetworkConfig

CERT = self_signed_certificate(P256PrivateKey.generate(), common_name="ledger")


@dataclass
class FakeEngine:
    entries: dict[str, DirectoryEntry] = field(default_factory=dict)

    def directory(self) -> dict[str, DirectoryEntry]:
        return dict(self.entries)


@dataclass
class FakeNetwork:
    raft: RaftNetworkConfig
    members: dict[int, LedgerMember]


@dataclass
class FakeService:
    network: FakeNetwork
    engine: FakeEngine


def genesis(n: int) -> tuple[FakeService, dict[str, Any]]:
    keys = {f"g{i}": Ed25519PrivateKey.generate().public_key for i in range(1, n + 1)}
    raft = RaftNetworkConfig(
        b"net", {i: tls_location(keys[f"g{i}"], "127.0.0.1", 7000 + i) for i in range(1, n + 1)}
    )
    members = {
        i: LedgerMember(f"g{i}", keys[f"g{i}"], CERT, f"member-{i}") for i in range(1, n + 1)
    }
    return FakeService(FakeNetwork(raft, members), FakeEngine()), keys


def test_the_peers_follow_the_directory_and_the_raft_configuration() -> None:
    service, keys = genesis(2)
    peers = LedgerPeers(service)  # type: ignore[arg-type]
    assert peers.names() == ["g1", "g2"]
    loc1 = service.network.raft.peers[1]
    found = peers.node_for(loc1.transport, loc1.designator)
    assert found is not None and found.name == "g1" and found.member == "member-1"

    # governance trusts a new node; it counts once the membership layer knows where it is
    key = Ed25519PrivateKey.generate().public_key
    entry = DirectoryEntry("joiner", "member-9", key, NodeCert.from_x509(CERT.x509))
    service.engine.entries["joiner"] = entry
    assert peers.get("joiner") is None
    loc = tls_location(key, "127.0.0.1", 7100)
    service.network.raft.add_peer(raft_id_for_key(key), loc)
    joined = peers.node_for(loc.transport, loc.designator)
    assert joined is not None and joined.name == "joiner" and joined.key == key

    # retiring a genesis node drops it, even while Raft still has it
    service.engine.entries["g2"] = DirectoryEntry(
        "g2", "member-2", keys["g2"], NodeCert.from_x509(CERT.x509), NodeStatus.RETIRED
    )
    peers.refresh(force=True)
    assert peers.names() == ["g1", "joiner"]
    service.network.raft.remove_peer(raft_id_for_key(key))
    assert peers.names() == ["g1"]
