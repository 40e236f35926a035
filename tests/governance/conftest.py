"""A governed three-member network on a bare engine: the handler fed by a signed log."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from charter.consensus.types import Entry, EntryKind
from charter.crypto import Ed25519PrivateKey, P256PrivateKey, self_signed_certificate
from charter.crypto.certs import Certificate
from charter.governance import actions as acts
from charter.governance.genesis import bootstrap_command
from charter.governance.handler import GovernanceHandler
from charter.governance.join import JoinRequest, SignedJoinRequest, sign_join_request
from charter.governance.model import Action, Constitution, Genesis, GovNode, MemberInfo
from charter.governance.requests import (
    Ballot,
    Payload,
    Propose,
    SignedRequest,
    Withdraw,
    make_request,
    sign_request,
)
from charter.identity.attestation import NODE, attest
from charter.ledger.engine import Command, Engine, sign_batch
from charter.ledger.engine.nodes import NodeStatus
from charter.ledger.engine.outcomes import AppliedTx
from charter.ledger.trust import NodeCert, TrustedNodes

T0_MS = 1_700_000_000_000
NETWORK_ID = bytes(range(16))
MEASUREMENT = "ab" * 32
MEMBERS = ("alice", "bob", "carol")


@dataclass(frozen=True)
class Keys:
    members: dict[str, Ed25519PrivateKey]
    nodes: dict[str, Ed25519PrivateKey]
    certs: dict[str, Certificate]
    ledger: dict[str, P256PrivateKey]


@pytest.fixture(scope="session")
def keys() -> Keys:
    members = {m: Ed25519PrivateKey.generate() for m in (*MEMBERS, "dave")}
    nodes = {f"{m}-node": Ed25519PrivateKey.generate() for m in (*MEMBERS, "dave")}
    ledger = {n: P256PrivateKey.generate() for n in nodes}
    certs = {n: self_signed_certificate(k, common_name=n) for n, k in ledger.items()}
    return Keys(members, nodes, certs, ledger)


def node_cert(keys: Keys, node: str) -> NodeCert:
    return NodeCert.from_x509(keys.certs[node].x509)


def make_genesis(keys: Keys, constitution: Constitution | None = None) -> Genesis:
    return Genesis(
        NETWORK_ID,
        constitution or Constitution(measurements=(MEASUREMENT,)),
        tuple(MemberInfo(m, keys.members[m].public_key) for m in MEMBERS),
        tuple(
            GovNode(
                f"{m}-node", m, keys.nodes[f"{m}-node"].public_key, node_cert(keys, f"{m}-node")
            )
            for m in MEMBERS
        ),
    )


@dataclass
class Gov:
    """Drives an engine with the governance handler; ledger time is ``now_ms``."""

    keys: Keys
    genesis: Genesis
    engine: Engine
    now_ms: int = T0_MS
    index: int = 0
    counter: int = 0
    log: list[Entry] = field(default_factory=list)

    def run(self, command: Command, node: str = "alice-node") -> AppliedTx:
        self.counter += 1
        seq = self.now_ms * 1000 + self.counter
        data = sign_batch(self.keys.nodes[node], node, seq, [command])
        self.index += 1
        entry = Entry(1, self.index, EntryKind.NORMAL, data)
        self.log.append(entry)
        result = self.engine.apply([entry])
        return result.applied[-1]

    def bootstrap(self) -> AppliedTx:
        return self.run(bootstrap_command(self.genesis))

    def signed(
        self,
        member: str,
        payload: Payload,
        *,
        created_ms: int | None = None,
        key: Ed25519PrivateKey | None = None,
        network_id: bytes = NETWORK_ID,
    ) -> SignedRequest:
        request = make_request(
            network_id,
            member,
            payload,
            created_ms=self.now_ms if created_ms is None else created_ms,
            nonce=os.urandom(16),
        )
        return sign_request(request, key or self.keys.members[member])

    def send(self, signed: SignedRequest, node: str = "alice-node") -> AppliedTx:
        return self.run(signed.command(), node)

    def propose(self, member: str, *actions: Action, title: str = "t") -> AppliedTx:
        return self.send(self.signed(member, Propose(title, tuple(actions))))

    def vote(self, member: str, pid: str, approve: bool = True) -> AppliedTx:
        return self.send(self.signed(member, Ballot(pid, approve)))

    def withdraw(self, member: str, pid: str) -> AppliedTx:
        return self.send(self.signed(member, Withdraw(pid)))

    def join_request(
        self,
        name: str = "dave-node",
        member: str = "dave",
        *,
        measurement: str = MEASUREMENT,
        signer: Ed25519PrivateKey | None = None,
        attester: str | None = None,
    ) -> SignedJoinRequest:
        node_key = self.keys.nodes[name]
        chain = attest(
            self.keys.members[attester or member],
            node_key.public_key,
            NODE,
            epoch=0,
            now=self.now_ms // 1000,
        )
        request = JoinRequest(
            NETWORK_ID, name, member, node_key.public_key, node_cert(self.keys, name),
            "127.0.0.1", 6001, "http://127.0.0.1:6000", measurement, self.now_ms,
            os.urandom(16), chain,
        )  # fmt: skip
        if signer is None:
            return sign_join_request(request, node_key)
        body = request.encode()
        return SignedJoinRequest(body, signer.sign(body))


def make_gov(keys: Keys, constitution: Constitution | None = None) -> Gov:
    genesis = make_genesis(keys, constitution)
    engine = Engine(
        network_secret=b"charter-governance-test-secret",
        node_keys={n.name: n.identity for n in genesis.nodes},
        node_members={n.name: n.member for n in genesis.nodes},
        trusted=TrustedNodes([n.ledger_cert for n in genesis.nodes]),
        handlers={"gov": GovernanceHandler()},
    )
    return Gov(keys, genesis, engine)


@pytest.fixture
def gov(keys: Keys) -> Gov:
    g = make_gov(keys)
    assert g.bootstrap().reason is None
    return g


def add_member(keys: Keys, name: str = "dave") -> Action:
    return acts.from_json(
        {"kind": "add_member", "name": name, "public_key": keys.members[name].public_key.hex()}
    )


def act(kind: str, **args: object) -> Action:
    return acts.from_json({"kind": kind, **args})


def reason(tx: AppliedTx) -> str:
    return tx.reason or ""


def rule(tx: AppliedTx) -> str:
    return (tx.reason or "").split(":", 1)[0]


def statuses(seq: Sequence[GovNode]) -> dict[str, NodeStatus]:
    return {n.name: n.status for n in seq}
