"""The join request: a new node asks, signed with its own identity key, to be known.

A joining node cannot submit to the ledger (only trusted nodes can), so a trusted
node relays its signed request as a governance command (``join_command``). Every
node's governance handler then checks, against the state at that point in the log:

- the node identity key's Ed25519 signature over the stored ``body`` bytes;
- the network id, and that the request is fresh (``created_ms`` within the
  constitution's request window of ledger time) and its nonce unseen;
- that ``member`` is an active member and ``attestation`` is a chain from that
  member's root key vouching for ``identity`` as a node key;
- that ``measurement`` is one of the constitution's allowed code measurements
  (otherwise the command is Invalid with reason ``gov.measurement: ...``);
- that no node of that name or identity key exists yet.

It then writes the node as ``pending`` in ``charter.gov.nodes`` and ``charter.nodes``;
members make it ``trusted`` by a ``trust_node`` proposal.

Byte layout (canonical Syrup; ``docs/governance.md``)::

    body   = <charter-join-request network-id:bytes name:str member:str
              identity:bytes[32] ledger-cert:bytes(DER) host:str port:int api-url:str
              measurement:str(64 hex) created-ms:int nonce:bytes[16] attestation:bytes>
    signed = <charter-join-signed body:bytes signature:bytes[64]>

The command carrying it is ``Command(app="gov", body=encode(signed))``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from cryptography import x509

from charter.codec.syrup import Record, Symbol, encode
from charter.crypto.errors import CryptoError, SignatureError
from charter.crypto.keys import Ed25519PrivateKey, Ed25519PublicKey
from charter.errors import CharterError
from charter.governance import records as r
from charter.governance.errors import RequestFormatError, RequestSignatureError
from charter.identity.attestation import AttestationChain
from charter.ledger.engine.commands import Command
from charter.ledger.trust import NodeCert

JOIN_REQUEST = Symbol("charter-join-request")
JOIN_SIGNED = Symbol("charter-join-signed")
NONCE_BYTES = 16
MEASUREMENT_PATTERN = re.compile(r"[0-9a-f]{64}")
GOV_APP = "gov"


def check_measurement(value: object, what: str = "measurement") -> str:
    s = r.text(value, what, limit=64)
    if MEASUREMENT_PATTERN.fullmatch(s) is None:
        raise RequestFormatError(f"{what}: expected 64 lowercase hex digits (a SHA-256)")
    return s


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """What a joining node presents about itself."""

    network_id: bytes
    name: str
    member: str
    identity: Ed25519PublicKey
    ledger_cert: NodeCert
    host: str
    port: int
    api_url: str
    measurement: str
    created_ms: int
    nonce: bytes
    attestation: AttestationChain

    def to_record(self) -> Record:
        return Record(
            JOIN_REQUEST,
            self.network_id,
            self.name,
            self.member,
            self.identity.raw,
            self.ledger_cert.der,
            self.host,
            self.port,
            self.api_url,
            self.measurement,
            self.created_ms,
            self.nonce,
            self.attestation.to_bytes(),
        )

    def encode(self) -> bytes:
        return encode(self.to_record())

    @classmethod
    def decode(cls, data: bytes) -> JoinRequest:
        f = r.decode_record(data, JOIN_REQUEST, 12, "join request")
        network_id = r.octets(f[0], "join request network id", limit=64)
        name = r.name(f[1], "join request name")
        member = r.name(f[2], "join request member")
        raw_key = r.octets(f[3], "join request identity", size=32)
        der = r.octets(f[4], "join request ledger certificate")
        host = r.text(f[5], "join request host", limit=253)
        port = r.integer(f[6], "join request port", high=65535)
        api_url = r.text(f[7], "join request api url", limit=2048)
        measurement = check_measurement(f[8], "join request measurement")
        created = r.integer(f[9], "join request created-ms")
        nonce = r.octets(f[10], "join request nonce", size=NONCE_BYTES)
        chain_bytes = r.octets(f[11], "join request attestation")
        try:
            identity = Ed25519PublicKey.from_raw(raw_key)
            cert = NodeCert.from_x509(x509.load_der_x509_certificate(der))
            chain = AttestationChain.from_bytes(chain_bytes)
        except (CharterError, ValueError) as exc:
            raise RequestFormatError(f"join request: {exc}") from None
        request = cls(
            network_id, name, member, identity, cert, host, port, api_url, measurement,
            created, nonce, chain,
        )  # fmt: skip
        if request.encode() != data:
            raise RequestFormatError("join request: fields do not re-encode to the same bytes")
        return request


@dataclass(frozen=True, slots=True)
class SignedJoinRequest:
    """A join request's exact bytes and the node identity key's signature over them."""

    body: bytes
    signature: bytes

    @property
    def request(self) -> JoinRequest:
        return JoinRequest.decode(self.body)

    def encode(self) -> bytes:
        return encode(Record(JOIN_SIGNED, self.body, self.signature))

    @classmethod
    def decode(cls, data: bytes) -> SignedJoinRequest:
        f = r.decode_record(data, JOIN_SIGNED, 2, "signed join request")
        body = r.octets(f[0], "signed join request body", limit=1 << 20)
        signature = r.octets(f[1], "signed join request signature", size=64)
        return cls(body, signature)

    def verify(self) -> JoinRequest:
        """The request, once its identity key's signature over ``body`` verifies."""
        request = self.request
        try:
            request.identity.verify(self.signature, self.body)
        except (SignatureError, CryptoError):
            raise RequestSignatureError(
                f"the join request of node {request.name!r} is not signed by its identity key"
            ) from None
        return request


def sign_join_request(request: JoinRequest, node_key: Ed25519PrivateKey) -> SignedJoinRequest:
    if node_key.public_key != request.identity:
        raise RequestSignatureError("a join request is signed by the joining node's identity key")
    body = request.encode()
    return SignedJoinRequest(body, node_key.sign(body))


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def join_command(signed: SignedJoinRequest) -> Command:
    """The governance command a trusted node submits to relay ``signed``."""
    return Command(GOV_APP, signed.encode(), f"join:{signed.request.name}")


__all__ = [
    "GOV_APP",
    "JOIN_REQUEST",
    "JOIN_SIGNED",
    "NONCE_BYTES",
    "JoinRequest",
    "SignedJoinRequest",
    "check_measurement",
    "join_command",
    "new_nonce",
    "sign_join_request",
]
