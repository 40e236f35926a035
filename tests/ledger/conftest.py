"""Shared fixtures: a node's ledger key and certificate, and a small signed ledger."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from charter.crypto import P256PrivateKey, self_signed_certificate
from charter.crypto.certs import Certificate
from charter.ledger.merkle import GENESIS_LEAF, MerkleTree, commit_evidence
from charter.ledger.receipts import LeafComponents
from charter.ledger.signatures import SignedRoot, sign_signed_root
from charter.ledger.trust import NodeCert, TrustedNodes

IAT = 1_700_000_000


@dataclass(frozen=True)
class Node:
    key: P256PrivateKey
    cert: Certificate

    @property
    def node_cert(self) -> NodeCert:
        return NodeCert.from_x509(self.cert.x509)

    @property
    def trusted(self) -> TrustedNodes:
        return TrustedNodes([self.node_cert])


@dataclass
class SignedLedger:
    """A tree over ``n`` transactions (leaf 0 the zero hash) and the signature after them."""

    tree: MerkleTree
    components: dict[int, LeafComponents]
    signed: SignedRoot


def make_node() -> Node:
    key = P256PrivateKey.generate()
    return Node(key, self_signed_certificate(key, common_name="charter node"))


def build_ledger(node: Node, n: int, *, view: int = 2, seed: int = 7) -> SignedLedger:
    rng = random.Random(seed)
    tree = MerkleTree([GENESIS_LEAF])
    components: dict[int, LeafComponents] = {}
    for seqno in range(1, n + 1):
        lc = LeafComponents(
            rng.randbytes(32),
            commit_evidence(view, seqno, rng.randbytes(32)),
            rng.randbytes(32) if seqno % 3 == 0 else bytes(32),
        )
        components[seqno] = lc
        tree.append(lc.leaf())
    signed = sign_signed_root(
        node.key, node.cert, view=view, seqno=n + 1, root=tree.root(), iat=IAT
    )
    return SignedLedger(tree, components, signed)


@pytest.fixture(scope="session")
def node() -> Node:
    return make_node()


@pytest.fixture(scope="session")
def other_node() -> Node:
    return make_node()


@pytest.fixture(scope="session")
def ledger(node: Node) -> SignedLedger:
    return build_ledger(node, 40)
