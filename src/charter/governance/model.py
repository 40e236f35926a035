"""The constitution and the other governance records, as typed values and Syrup records.

Each record here is what one row of a ``charter.gov.*`` table holds (``state`` names
the tables). Readers are strict: a row that does not parse is reported, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from cryptography import x509

from charter.codec.syrup import Record, Symbol, encode
from charter.crypto.errors import CryptoError
from charter.crypto.keys import Ed25519PublicKey
from charter.errors import CharterError
from charter.governance import records as r
from charter.governance.errors import RequestFormatError
from charter.governance.join import check_measurement
from charter.governance.thresholds import Threshold
from charter.ledger.engine.nodes import NodeStatus
from charter.ledger.trust import NodeCert

CONSTITUTION = Symbol("charter-gov-constitution")
MEMBER = Symbol("charter-gov-member")
NODE = Symbol("charter-gov-node")
USER = Symbol("charter-gov-user")
PROPOSAL = Symbol("charter-gov-proposal")
ACTION = Symbol("charter-gov-action")
GENESIS = Symbol("charter-gov-genesis")
INTENT = Symbol("charter-gov-intent")

DEFAULT_KIND = "default"
DEFAULT_WINDOW_MS = 5 * 60 * 1000
MAX_WINDOW_MS = 24 * 3600 * 1000
TOKEN_POOL_POLICIES = ("any-member", "proposal")
MEMBER_STATUSES = ("active", "removed")
PROPOSAL_STATES = ("open", "accepted", "rejected", "withdrawn", "dropped", "failed")
TokenPoolPolicy = Literal["any-member", "proposal"]
ProposalState = Literal["open", "accepted", "rejected", "withdrawn", "dropped", "failed"]


@dataclass(frozen=True, slots=True)
class Constitution:
    """The rules: thresholds per action kind, allowed code, request window, pool policy."""

    thresholds: Mapping[str, Threshold] = field(default_factory=lambda: {DEFAULT_KIND: Threshold()})
    measurements: tuple[str, ...] = ()
    request_window_ms: int = DEFAULT_WINDOW_MS
    token_pools: TokenPoolPolicy = "any-member"

    def __post_init__(self) -> None:
        if DEFAULT_KIND not in self.thresholds:
            raise RequestFormatError("constitution: thresholds must include 'default'")
        if list(self.measurements) != sorted(set(self.measurements)):
            raise RequestFormatError("constitution: measurements must be sorted and unique")
        for m in self.measurements:
            check_measurement(m)
        if not 1000 <= self.request_window_ms <= MAX_WINDOW_MS:
            raise RequestFormatError(
                f"constitution: request window must be 1000..{MAX_WINDOW_MS} ms"
            )
        if self.token_pools not in TOKEN_POOL_POLICIES:
            raise RequestFormatError("constitution: token_pools is any-member or proposal")

    def threshold(self, kind: str) -> Threshold:
        return self.thresholds.get(kind) or self.thresholds[DEFAULT_KIND]

    def with_changes(self, **changes: object) -> Constitution:
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_record(self) -> Record:
        return Record(
            CONSTITUTION,
            {k: t.to_record() for k, t in self.thresholds.items()},
            list(self.measurements),
            self.request_window_ms,
            Symbol(self.token_pools),
        )

    def encode(self) -> bytes:
        return encode(self.to_record())

    @classmethod
    def from_record(cls, value: object) -> Constitution:
        f = r.record_fields(value, CONSTITUTION, 4, "constitution")
        if not isinstance(f[0], dict) or len(f[0]) > 64:
            raise RequestFormatError("constitution thresholds: expected a dictionary")
        thresholds = {
            r.name(k, "threshold kind"): Threshold.from_record(v) for k, v in f[0].items()
        }
        if not isinstance(f[1], list) or len(f[1]) > 256:
            raise RequestFormatError("constitution measurements: expected a list")
        measurements = tuple(check_measurement(m) for m in f[1])
        window = r.integer(f[2], "constitution request window")
        pools = r.symbol(f[3], "constitution token pools", TOKEN_POOL_POLICIES)
        return cls(thresholds, measurements, window, pools)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        return {
            "thresholds": {k: t.to_json() for k, t in sorted(self.thresholds.items())},
            "measurements": list(self.measurements),
            "request_window_ms": self.request_window_ms,
            "token_pools": self.token_pools,
        }

    @classmethod
    def from_json(cls, value: object) -> Constitution:
        allowed = {"thresholds", "measurements", "request_window_ms", "token_pools"}
        if not isinstance(value, dict) or not set(value) <= allowed:
            raise RequestFormatError(
                f"constitution: expected an object with keys among {sorted(allowed)}"
            )
        raw_t = value.get("thresholds", {DEFAULT_KIND: {"rule": "majority"}})
        if not isinstance(raw_t, dict):
            raise RequestFormatError("constitution thresholds: expected an object")
        thresholds = {r.name(k, "threshold kind"): Threshold.from_json(v) for k, v in raw_t.items()}
        thresholds.setdefault(DEFAULT_KIND, Threshold())
        raw_m = value.get("measurements", [])
        if not isinstance(raw_m, list):
            raise RequestFormatError("constitution measurements: expected a list")
        measurements = tuple(sorted({check_measurement(m) for m in raw_m}))
        window = value.get("request_window_ms", DEFAULT_WINDOW_MS)
        pools = value.get("token_pools", "any-member")
        if type(window) is not int:
            raise RequestFormatError("constitution request_window_ms: expected an integer")
        return cls(thresholds, measurements, window, pools)


@dataclass(frozen=True, slots=True)
class MemberInfo:
    name: str
    public_key: Ed25519PublicKey
    roles: tuple[str, ...] = ("member",)
    data: Mapping[str, str] = field(default_factory=dict)
    status: Literal["active", "removed"] = "active"

    @property
    def active(self) -> bool:
        return self.status == "active"

    def encode(self) -> bytes:
        return encode(
            Record(
                MEMBER,
                self.public_key.raw,
                list(self.roles),
                dict(self.data),
                Symbol(self.status),
            )
        )

    @classmethod
    def decode(cls, name: str, data: bytes) -> MemberInfo:
        f = r.decode_record(data, MEMBER, 4, f"member {name!r}")
        key = _ed25519(r.octets(f[0], "member key", size=32), "member key")
        roles = r.names(f[1], "member roles")
        info = r.string_map(f[2], "member data")
        status = r.symbol(f[3], "member status", MEMBER_STATUSES)
        return cls(name, key, roles, info, status)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "public_key": self.public_key.hex(),
            "roles": list(self.roles),
            "data": dict(self.data),
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class GovNode:
    """A node as governance records it (a superset of the engine's directory entry)."""

    name: str
    member: str
    identity: Ed25519PublicKey
    ledger_cert: NodeCert
    host: str = ""
    port: int = 0
    api_url: str = ""
    measurement: str = ""
    status: NodeStatus = NodeStatus.TRUSTED

    def encode(self) -> bytes:
        return encode(
            Record(
                NODE,
                self.member,
                self.identity.raw,
                self.ledger_cert.der,
                self.host,
                self.port,
                self.api_url,
                self.measurement,
                Symbol(self.status.value),
            )
        )

    @classmethod
    def decode(cls, name: str, data: bytes) -> GovNode:
        f = r.decode_record(data, NODE, 8, f"node {name!r}")
        member = r.name(f[0], "node member")
        identity = _ed25519(r.octets(f[1], "node identity", size=32), "node identity")
        der = r.octets(f[2], "node ledger certificate")
        host = r.text(f[3], "node host", limit=253)
        port = r.integer(f[4], "node port", high=65535)
        api_url = r.text(f[5], "node api url", limit=2048)
        measurement = r.text(f[6], "node measurement", limit=64)
        status = r.symbol(f[7], "node status", [s.value for s in NodeStatus])
        try:
            cert = NodeCert.from_x509(x509.load_der_x509_certificate(der))
        except (CharterError, ValueError) as exc:
            raise RequestFormatError(f"node {name!r}: ledger certificate: {exc}") from None
        return cls(
            name, member, identity, cert, host, port, api_url, measurement, NodeStatus(status)
        )

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "member": self.member,
            "identity": self.identity.hex(),
            "node_id": self.ledger_cert.node_id,
            "ledger_cert": self.ledger_cert.pem(),
            "host": self.host,
            "port": self.port,
            "api_url": self.api_url,
            "measurement": self.measurement,
            "status": self.status.value,
        }


@dataclass(frozen=True, slots=True)
class AppUser:
    """An application user of a member, with roles the member's apps check."""

    member: str
    name: str
    roles: tuple[str, ...]
    public_key: Ed25519PublicKey | None = None

    @property
    def key(self) -> str:
        return user_key(self.member, self.name)

    def encode(self) -> bytes:
        raw = self.public_key.raw if self.public_key is not None else b""
        return encode(Record(USER, list(self.roles), raw))

    @classmethod
    def decode(cls, key: str, data: bytes) -> AppUser:
        member, _, name = key.partition("/")
        f = r.decode_record(data, USER, 2, f"user {key!r}")
        roles = r.names(f[0], "user roles")
        raw = r.octets(f[1], "user key", limit=32)
        pub = _ed25519(raw, "user key") if raw else None
        return cls(r.name(member, "user member"), r.name(name, "user name"), roles, pub)

    def to_json(self) -> dict[str, object]:
        return {
            "member": self.member,
            "name": self.name,
            "roles": list(self.roles),
            "public_key": self.public_key.hex() if self.public_key is not None else None,
        }


def user_key(member: str, name: str) -> str:
    return f"{member}/{name}"


@dataclass(frozen=True, slots=True)
class Action:
    """One change a proposal asks for: a kind and its arguments (checked by ``actions``)."""

    kind: str
    args: Mapping[str, object] = field(default_factory=dict)

    def to_record(self) -> Record:
        return Record(ACTION, Symbol(self.kind), dict(self.args))

    @classmethod
    def from_record(cls, value: object) -> Action:
        f = r.record_fields(value, ACTION, 2, "action")
        if not isinstance(f[0], Symbol):
            raise RequestFormatError("action kind: expected a symbol")
        if not isinstance(f[1], dict) or not all(type(k) is str for k in f[1]):
            raise RequestFormatError("action arguments: expected a dictionary by name")
        return cls(f[0].name, dict(f[1]))


@dataclass(frozen=True, slots=True)
class Proposal:
    id: str
    proposer: str
    title: str
    actions: tuple[Action, ...]
    ballots: Mapping[str, bool]
    state: ProposalState
    created_ms: int
    decided_tx: str = ""
    reason: str = ""

    @property
    def open(self) -> bool:
        return self.state == "open"

    def encode(self) -> bytes:
        return encode(
            Record(
                PROPOSAL,
                self.proposer,
                self.title,
                [a.to_record() for a in self.actions],
                dict(self.ballots),
                Symbol(self.state),
                self.created_ms,
                self.decided_tx,
                self.reason,
            )
        )

    @classmethod
    def decode(cls, pid: str, data: bytes) -> Proposal:
        f = r.decode_record(data, PROPOSAL, 8, f"proposal {pid!r}")
        proposer = r.name(f[0], "proposer")
        title = r.text(f[1], "proposal title")
        if not isinstance(f[2], list):
            raise RequestFormatError("proposal actions: expected a list")
        actions = tuple(Action.from_record(a) for a in f[2])
        if not isinstance(f[3], dict):
            raise RequestFormatError("proposal ballots: expected a dictionary")
        ballots = {r.name(k, "voter"): r.boolean(v, "ballot") for k, v in f[3].items()}
        state = r.symbol(f[4], "proposal state", PROPOSAL_STATES)
        created = r.integer(f[5], "proposal created-ms")
        decided = r.text(f[6], "proposal decided tx", limit=64)
        reason = r.text(f[7], "proposal reason")
        return cls(pid, proposer, title, actions, ballots, state, created, decided, reason)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Intent:
    """Something governance decided that the node layer carries out (leadership, snapshot)."""

    kind: str
    target: str
    tx_id: str

    def encode(self) -> bytes:
        return encode(Record(INTENT, Symbol(self.kind), self.target, self.tx_id))

    @classmethod
    def decode(cls, data: bytes) -> Intent:
        f = r.decode_record(data, INTENT, 3, "intent")
        if not isinstance(f[0], Symbol):
            raise RequestFormatError("intent kind: expected a symbol")
        return cls(f[0].name, r.text(f[1], "intent target"), r.text(f[2], "intent tx", limit=64))


@dataclass(frozen=True, slots=True)
class Genesis:
    """The first constitution, members and nodes; written by the bootstrap command."""

    network_id: bytes
    constitution: Constitution
    members: tuple[MemberInfo, ...]
    nodes: tuple[GovNode, ...]
    users: tuple[AppUser, ...] = ()

    def encode(self) -> bytes:
        return encode(
            Record(
                GENESIS,
                self.network_id,
                self.constitution.to_record(),
                {m.name: m.encode() for m in self.members},
                {n.name: n.encode() for n in self.nodes},
                {u.key: u.encode() for u in self.users},
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> Genesis:
        f = r.decode_record(data, GENESIS, 5, "genesis")
        network_id = r.octets(f[0], "genesis network id", limit=64)
        constitution = Constitution.from_record(f[1])
        tables: list[dict[str, bytes]] = []
        for i, what in ((2, "members"), (3, "nodes"), (4, "users")):
            table = f[i]
            if not isinstance(table, dict) or not all(
                type(k) is str and type(v) is bytes for k, v in table.items()
            ):
                raise RequestFormatError(f"genesis {what}: expected a dictionary of records")
            tables.append(table)
        members = tuple(MemberInfo.decode(k, v) for k, v in tables[0].items())
        nodes = tuple(GovNode.decode(k, v) for k, v in tables[1].items())
        users = tuple(AppUser.decode(k, v) for k, v in tables[2].items())
        if not members:
            raise RequestFormatError("genesis: at least one member")
        return cls(network_id, constitution, members, nodes, users)


def _ed25519(raw: bytes, what: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_raw(raw)
    except (CryptoError, CharterError, ValueError):
        raise RequestFormatError(f"{what}: not an Ed25519 public key") from None


__all__ = [
    "DEFAULT_KIND",
    "DEFAULT_WINDOW_MS",
    "Action",
    "AppUser",
    "Constitution",
    "Genesis",
    "GovNode",
    "Intent",
    "MemberInfo",
    "Proposal",
    "ProposalState",
    "TokenPoolPolicy",
    "user_key",
]
