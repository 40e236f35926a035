"""A valid three-member network, built once, handed out as a fresh JSON document."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import pytest

from charter.crypto.certs import self_signed_certificate
from charter.crypto.keys import Ed25519PrivateKey, P256PrivateKey
from charter.identity.attestation import NODE, attest
from charter.ledger.trust import NodeCert
from charter.node.network import Member, Network, NodeEntry, build_network


@dataclass(frozen=True)
class Sample:
    network: Network
    member_keys: list[Ed25519PrivateKey]
    node_keys: list[Ed25519PrivateKey]

    def doc(self) -> dict[str, object]:
        return copy.deepcopy(json.loads(self.network.to_text()))


def make_network(count: int = 3) -> Sample:
    members: list[Member] = []
    nodes: list[NodeEntry] = []
    member_keys: list[Ed25519PrivateKey] = []
    node_keys: list[Ed25519PrivateKey] = []
    for i in range(count):
        root = Ed25519PrivateKey.generate()
        node = Ed25519PrivateKey.generate()
        ledger = P256PrivateKey.generate()
        cert = self_signed_certificate(ledger)
        members.append(Member(f"org-{i}", root.public_key, ("member", "operator")))
        nodes.append(
            NodeEntry(
                name=f"org-{i}-node",
                member=f"org-{i}",
                identity=node.public_key,
                host="127.0.0.1",
                port=7001 + 10 * i,
                api_url=f"http://127.0.0.1:{7000 + 10 * i}",
                cert=NodeCert.from_pem(cert.to_pem()),
                attestation=attest(root, node.public_key, NODE, epoch=0),
            )
        )
        member_keys.append(root)
        node_keys.append(node)
    network = build_network("test-net", bytes(range(16)), members, nodes)
    return Sample(network, member_keys, node_keys)


@pytest.fixture(scope="session")
def sample() -> Sample:
    return make_network()
