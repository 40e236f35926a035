"""A three-member network for engine tests: batch keys, a ledger signer, a log builder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from charter.consensus.types import ConfChange, ConfChangeKind, Entry, EntryKind
from charter.crypto import Ed25519PrivateKey, P256PrivateKey, self_signed_certificate
from charter.crypto.certs import Certificate
from charter.ledger.engine import Engine, Transaction, Write, sign_batch
from charter.ledger.signatures import SignaturePolicy
from charter.ledger.trust import NodeCert, TrustedNodes

NOW_MS = 1_700_000_000_000


@dataclass(frozen=True)
class Signer:
    key: P256PrivateKey
    cert: Certificate


@dataclass
class Net:
    members: dict[str, Ed25519PrivateKey]
    signer: Signer
    secret: bytes = b"charter-test-network-secret"

    @property
    def trusted(self) -> TrustedNodes:
        return TrustedNodes([NodeCert.from_x509(self.signer.cert.x509)])

    def engine(self, **kwargs: object) -> Engine:
        return Engine(
            network_secret=self.secret,
            node_keys={who: key.public_key for who, key in self.members.items()},
            trusted=self.trusted,
            **kwargs,  # type: ignore[arg-type]
        )

    def batch(self, who: str, seq: int, txs: Sequence[Transaction]) -> bytes:
        return sign_batch(self.members[who], who, seq, txs)


@dataclass
class LogBuilder:
    """Builds a committed log; a reference engine applies each entry as it is added."""

    net: Net
    term: int = 1
    entries: list[Entry] = field(default_factory=list)
    ref: Engine | None = None
    seqs: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ref is None:
            self.ref = self.net.engine(signature_policy=SignaturePolicy(every_tx=10))

    @property
    def engine(self) -> Engine:
        assert self.ref is not None
        return self.ref

    def add(self, data: bytes = b"", kind: EntryKind = EntryKind.NORMAL) -> Entry:
        entry = Entry(self.term, len(self.entries) + 1, kind, data)
        self.entries.append(entry)
        self.engine.apply([entry])
        return entry

    def batch(self, who: str, txs: Sequence[Transaction], seq: int | None = None) -> Entry:
        if seq is None:
            seq = self.seqs.get(who, 0)
            self.seqs[who] = seq + 1
        return self.add(self.net.batch(who, seq, txs))

    def put(self, who: str, *pairs: tuple[str, bytes | None], table: str = "t") -> Entry:
        """One batch of one-write transactions."""
        return self.batch(who, [Transaction.of([Write(table, k, v)]) for k, v in pairs])

    def signature_data(self) -> bytes:
        return self.engine.make_signature(
            self.term, self.net.signer.key, self.net.signer.cert, NOW_MS
        )

    def signature(self) -> Entry:
        return self.add(self.signature_data())

    def noop(self) -> Entry:
        return self.add(b"")

    def conf_change(self) -> Entry:
        return self.add(ConfChange(ConfChangeKind.ADD_LEARNER, 4).encode(), EntryKind.CONF_CHANGE)

    def new_term(self) -> Entry:
        self.term += 1
        return self.noop()


def make_signer() -> Signer:
    key = P256PrivateKey.generate()
    return Signer(key, self_signed_certificate(key, common_name="charter ledger node"))


@pytest.fixture(scope="session")
def net() -> Net:
    members = {f"node-{i}": Ed25519PrivateKey.generate() for i in (1, 2, 3)}
    return Net(members, make_signer())


@pytest.fixture(scope="session")
def rogue() -> Signer:
    """A ledger key the network does not trust."""
    return make_signer()


@pytest.fixture
def log(net: Net) -> LogBuilder:
    return LogBuilder(net)
