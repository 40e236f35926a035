"""The engine's node directory: which nodes may submit batches and sign roots.

Genesis nodes come from the network file the engine is built with. After that the
directory is ledger state: table ``charter.nodes``, key = node name, value =
``<charter-node member batch-key ledger-cert-der status>``. Only a command handler
that declared the ``charter.nodes`` table (governance) writes it, so who takes part
is decided on the ledger, the same way on every node.

- ``pending``: known (a node asked to join), may neither submit nor sign.
- ``trusted``: its batches and signature transactions are accepted.
- ``retired``: no longer accepted; what it did before stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.crypto.errors import CryptoError
from charter.crypto.keys import Ed25519PublicKey
from charter.ledger.engine.errors import EngineSnapshotError
from charter.ledger.errors import LedgerError
from charter.ledger.trust import NodeCert

NODES_TABLE = "charter.nodes"
NODE_LABEL = Symbol("charter-node")


class NodeStatus(StrEnum):
    PENDING = "pending"
    TRUSTED = "trusted"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One node as the engine sees it."""

    name: str
    member: str
    batch_key: Ed25519PublicKey
    ledger_cert: NodeCert
    status: NodeStatus = NodeStatus.TRUSTED

    def encode(self) -> bytes:
        return encode(
            Record(
                NODE_LABEL,
                self.member,
                self.batch_key.raw,
                self.ledger_cert.der,
                Symbol(self.status.value),
            )
        )

    @classmethod
    def decode(cls, name: str, data: bytes) -> DirectoryEntry:
        try:
            record = decode(data)
        except SyrupError as exc:
            raise EngineSnapshotError(
                f"node {name!r}: not canonical Syrup: {exc.message}"
            ) from None
        if not isinstance(record, Record) or record.label != NODE_LABEL or len(record.fields) != 4:
            raise EngineSnapshotError(f"node {name!r}: not a charter-node record")
        member, raw_key, der, status = record.fields
        if type(member) is not str or type(raw_key) is not bytes or type(der) is not bytes:
            raise EngineSnapshotError(f"node {name!r}: malformed fields")
        if not isinstance(status, Symbol) or status.name not in NodeStatus._value2member_map_:
            raise EngineSnapshotError(f"node {name!r}: unknown status {status!r}")
        try:
            key = Ed25519PublicKey.from_raw(raw_key)
            cert = NodeCert.from_x509(x509.load_der_x509_certificate(der))
        except (CryptoError, LedgerError, ValueError) as exc:
            raise EngineSnapshotError(f"node {name!r}: {exc}") from None
        return cls(name, member, key, cert, NodeStatus(status.name))


__all__ = ["NODES_TABLE", "DirectoryEntry", "NodeStatus"]
