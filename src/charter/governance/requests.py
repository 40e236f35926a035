"""Members' signed requests: propose, ballot, withdraw.

A request is signed with the member's key (the root key ``m/0'`` of the member's
24-word identity, the key the network file lists) over its exact canonical bytes::

    body    = <charter-gov-request network-id:bytes member:str created-ms:int
               nonce:bytes[16] payload>
    payload = <charter-gov-propose title:str [<charter-gov-action kind:symbol args:dict> ...]>
            | <charter-gov-ballot proposal-id:str for:bool>
            | <charter-gov-withdraw proposal-id:str>
    signed  = <charter-gov-signed body:bytes signature:bytes[64]>

The ledger stores ``signed`` as the command body, so what was signed is what an audit
re-verifies; nothing is re-encoded to check a signature.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from charter.codec.syrup import Record, Symbol, encode
from charter.crypto.errors import CryptoError, SignatureError
from charter.crypto.keys import Ed25519PrivateKey, Ed25519PublicKey
from charter.governance import records as r
from charter.governance.errors import RequestFormatError, RequestSignatureError
from charter.governance.join import GOV_APP, NONCE_BYTES, new_nonce
from charter.governance.model import Action
from charter.ledger.engine.commands import Command

REQUEST = Symbol("charter-gov-request")
SIGNED = Symbol("charter-gov-signed")
PROPOSE = Symbol("charter-gov-propose")
BALLOT = Symbol("charter-gov-ballot")
WITHDRAW = Symbol("charter-gov-withdraw")
MAX_ACTIONS = 64


@dataclass(frozen=True, slots=True)
class Propose:
    title: str
    actions: tuple[Action, ...]

    def to_record(self) -> Record:
        return Record(PROPOSE, self.title, [a.to_record() for a in self.actions])


@dataclass(frozen=True, slots=True)
class Ballot:
    proposal_id: str
    approve: bool

    def to_record(self) -> Record:
        return Record(BALLOT, self.proposal_id, self.approve)


@dataclass(frozen=True, slots=True)
class Withdraw:
    proposal_id: str

    def to_record(self) -> Record:
        return Record(WITHDRAW, self.proposal_id)


Payload = Propose | Ballot | Withdraw


def _payload(value: object) -> Payload:
    if not isinstance(value, Record):
        raise RequestFormatError("request payload: expected a record")
    if value.label == PROPOSE:
        f = r.record_fields(value, PROPOSE, 2, "proposal")
        title = r.text(f[0], "proposal title")
        if not isinstance(f[1], list) or not 1 <= len(f[1]) <= MAX_ACTIONS:
            raise RequestFormatError(f"proposal actions: expected 1..{MAX_ACTIONS} actions")
        return Propose(title, tuple(Action.from_record(a) for a in f[1]))
    if value.label == BALLOT:
        f = r.record_fields(value, BALLOT, 2, "ballot")
        return Ballot(r.text(f[0], "proposal id", limit=64), r.boolean(f[1], "ballot"))
    if value.label == WITHDRAW:
        f = r.record_fields(value, WITHDRAW, 1, "withdrawal")
        return Withdraw(r.text(f[0], "proposal id", limit=64))
    raise RequestFormatError("request payload: not a proposal, ballot or withdrawal")


@dataclass(frozen=True, slots=True)
class GovRequest:
    network_id: bytes
    member: str
    created_ms: int
    nonce: bytes
    payload: Payload

    @property
    def kind(self) -> str:
        return {Propose: "propose", Ballot: "ballot", Withdraw: "withdraw"}[type(self.payload)]

    def encode(self) -> bytes:
        return encode(
            Record(
                REQUEST,
                self.network_id,
                self.member,
                self.created_ms,
                self.nonce,
                self.payload.to_record(),
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> GovRequest:
        f = r.decode_record(data, REQUEST, 5, "governance request")
        request = cls(
            r.octets(f[0], "request network id", limit=64),
            r.name(f[1], "request member"),
            r.integer(f[2], "request created-ms"),
            r.octets(f[3], "request nonce", size=NONCE_BYTES),
            _payload(f[4]),
        )
        return request


@dataclass(frozen=True, slots=True)
class SignedRequest:
    body: bytes
    signature: bytes

    @property
    def request(self) -> GovRequest:
        return GovRequest.decode(self.body)

    def encode(self) -> bytes:
        return encode(Record(SIGNED, self.body, self.signature))

    @classmethod
    def decode(cls, data: bytes) -> SignedRequest:
        f = r.decode_record(data, SIGNED, 2, "signed request")
        return cls(
            r.octets(f[0], "signed request body", limit=1 << 20),
            r.octets(f[1], "signed request signature", size=64),
        )

    def verify(self, key: Ed25519PublicKey) -> None:
        try:
            key.verify(self.signature, self.body)
        except (SignatureError, CryptoError):
            raise RequestSignatureError(
                "the request's signature does not verify with the member's key"
            ) from None

    def command(self) -> Command:
        return Command(GOV_APP, self.encode(), "")


def make_request(
    network_id: bytes,
    member: str,
    payload: Payload,
    *,
    created_ms: int | None = None,
    nonce: bytes | None = None,
) -> GovRequest:
    """A request created now (wall clock) with a fresh random nonce, unless given."""
    return GovRequest(
        network_id,
        member,
        int(time.time() * 1000) if created_ms is None else created_ms,
        new_nonce() if nonce is None else nonce,
        payload,
    )


def sign_request(request: GovRequest, key: Ed25519PrivateKey) -> SignedRequest:
    body = request.encode()
    return SignedRequest(body, key.sign(body))


__all__ = [
    "Ballot",
    "GovRequest",
    "Payload",
    "Propose",
    "SignedRequest",
    "Withdraw",
    "make_request",
    "sign_request",
]
