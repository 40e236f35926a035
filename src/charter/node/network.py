"""The network file: who the members are, which nodes act for them, how to reach them.

A JSON document (``"charter_network": 1``, format in docs/configuration.md) holding only
public material: member public keys, each node's identity key (its OCapN TLS
designator), location, API URL, ledger certificate and the attestation chain by which
its member's root key vouches for it, and the initial Raft voters. Any member can
export it and every node loads the same file.

The loader trusts nothing it reads: each field is checked for type and range, every
derived value is recomputed and compared (a node's Raft id from its identity key, its
ledger node id from its certificate), and every attestation chain is verified against
its member's key. The file is also a valid receipt-verification network file
(``charter.ledger.trust.load_network``): each node carries ``node_id`` and ``cert``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ed25519

from charter.crypto.keyfile import load_ed25519_private_key, load_p256_private_key
from charter.crypto.keys import Ed25519PrivateKey, Ed25519PublicKey, P256PrivateKey
from charter.errors import CharterError
from charter.identity.attestation import NODE, AttestationChain, verify_chain
from charter.ledger.trust import NodeCert, TrustedNodes
from charter.node.config import (
    ConfigAttestationError,
    ConfigConsistencyError,
    ConfigFieldError,
    ConfigReadError,
    ConfigVersionError,
    Fields,
    NodeConfig,
    check_host,
    check_name,
    check_port,
    read_limited,
)
from charter.node.raft_transport import RaftNetworkConfig
from charter.ocapn.locator import PeerLocation
from charter.ocapn.netlayer.tls import TLS_TRANSPORT, designator_for_key, key_for_designator

NETWORK_FILE_VERSION: Final = 1
NETWORK_ID_BYTES: Final = 16
MAX_MEMBERS: Final = 256
MAX_NODES: Final = 1024
RAFT_ID_BITS: Final = 53
ROLE_PATTERN: Final = re.compile(r"[a-z][a-z0-9-]{0,31}")
_HEX = re.compile(r"[0-9a-f]+")


def raft_id_for_key(identity: Ed25519PublicKey) -> int:
    """A node's Raft id: the top 53 bits of the first 8 bytes of SHA-256(raw identity key),
    read big-endian; 0 becomes 1.

    Stable (the same key always gives the same id) and needs no coordination. 53 bits
    keep the id exact in every JSON reader (JavaScript numbers) and in a signed 64-bit
    SQL column; a collision between two nodes of one network is refused by the loader.
    """
    digest = hashlib.sha256(identity.raw).digest()
    value = int.from_bytes(digest[:8], "big") >> (64 - RAFT_ID_BITS)
    return value or 1


def tls_designator(identity: Ed25519PublicKey) -> str:
    """The identity key as the TLS netlayer names it (52 base32 characters)."""
    return designator_for_key(identity.to_cryptography())


def identity_from_designator(designator: str) -> Ed25519PublicKey:
    try:
        key = key_for_designator(designator)
    except (CharterError, ValueError):
        raise ConfigFieldError(f"{designator!r} is not an Ed25519 TLS designator") from None
    assert isinstance(key, ed25519.Ed25519PublicKey)
    return Ed25519PublicKey(key)


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    public_key: Ed25519PublicKey
    roles: tuple[str, ...] = ("member",)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "public_key": self.public_key.hex(), "roles": list(self.roles)}


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One node as every other node knows it."""

    name: str
    member: str
    identity: Ed25519PublicKey
    host: str
    port: int
    api_url: str
    cert: NodeCert
    attestation: AttestationChain

    @property
    def raft_id(self) -> int:
        return raft_id_for_key(self.identity)

    @property
    def designator(self) -> str:
        return tls_designator(self.identity)

    @property
    def node_id(self) -> str:
        """The ledger node id: hex SHA-256 of the ledger key's SubjectPublicKeyInfo."""
        return self.cert.node_id

    def location(self) -> PeerLocation:
        return PeerLocation(
            self.designator, TLS_TRANSPORT, {"host": self.host, "port": str(self.port)}
        )

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "member": self.member,
            "raft_id": self.raft_id,
            "node_id": self.node_id,
            "identity": self.designator,
            "location": {"transport": TLS_TRANSPORT, "host": self.host, "port": self.port},
            "api_url": self.api_url,
            "cert": self.cert.pem(),
            "attestation": self.attestation.to_text(),
        }


@dataclass(frozen=True, slots=True)
class Network:
    """A checked network file."""

    name: str
    network_id: bytes
    members: tuple[Member, ...]
    nodes: tuple[NodeEntry, ...]
    voters: tuple[int, ...]
    constitution: Mapping[str, Any] | None = None
    """The genesis constitution's rules (``charter.governance.genesis``), as written by
    ``charter stack init``; checked by governance when a node builds its genesis."""

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise ConfigConsistencyError(f"no member named {name!r} in network {self.name}")

    def node(self, name: str) -> NodeEntry:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigConsistencyError(f"no node named {name!r} in network {self.name}")

    def raft_config(self) -> RaftNetworkConfig:
        """What ``RaftTransport`` needs: Raft id -> TLS location, keyed by this network."""
        return RaftNetworkConfig(self.network_id, {n.raft_id: n.location() for n in self.nodes})

    def trusted_nodes(self) -> TrustedNodes:
        """The ledger certificates a receipt of this network must be signed by."""
        return TrustedNodes(n.cert for n in self.nodes)

    def to_json(self) -> dict[str, object]:
        return {
            "charter_network": NETWORK_FILE_VERSION,
            "name": self.name,
            "network_id": self.network_id.hex(),
            "members": [m.to_json() for m in self.members],
            "nodes": [n.to_json() for n in self.nodes],
            "voters": list(self.voters),
            **({"constitution": dict(self.constitution)} if self.constitution is not None else {}),
        }

    def to_text(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def save(self, path: Path) -> None:
        path.write_text(self.to_text(), encoding="utf-8")


def build_network(
    name: str,
    network_id: bytes,
    members: Iterable[Member],
    nodes: Iterable[NodeEntry],
    voters: Iterable[int] | None = None,
    *,
    now: int | None = None,
    constitution: Mapping[str, Any] | None = None,
) -> Network:
    """Assemble a network and hold it to the same checks as a loaded file."""
    node_list = tuple(nodes)
    draft = Network(
        name=name,
        network_id=network_id,
        members=tuple(members),
        nodes=node_list,
        voters=tuple(voters) if voters is not None else tuple(n.raft_id for n in node_list),
        constitution=constitution,
    )
    # One path of checks: round-trip through the JSON form.
    return parse_network(json.loads(draft.to_text()), now=now)


def load_network(path: Path | str, *, now: int | None = None) -> Network:
    """Read and check a network file; any defect is a ``ConfigError`` naming the field."""
    source = Path(path)
    data = read_limited(source, "network file")
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigReadError(f"network file {source} is not valid JSON: {exc}") from None
    return parse_network(doc, now=now)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects as dicts, refusing a repeated key (which one would win is a guess)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ConfigFieldError(f"network file: key {key!r} appears twice in one object")
        result[key] = value
    return result


def parse_network(doc: object, *, now: int | None = None) -> Network:
    """Check a decoded network document; ``now`` (Unix seconds) for attestation validity."""
    top = Fields(doc, "")
    version = top.raw("charter_network")
    if type(version) is not int:
        raise ConfigFieldError(
            "charter_network: expected the integer format version (is this a network file?)"
        )
    if version != NETWORK_FILE_VERSION:
        raise ConfigVersionError(
            f"network file format {version} is not supported (this Charter reads "
            f"{NETWORK_FILE_VERSION})"
        )
    name = check_name(top.raw("name"), "name")
    network_id = _network_id(top.string("network_id"))
    members = _members(top.array("members"))
    nodes = _nodes(top.array("nodes"), {m.name: m for m in members}, now)
    voters = _voters(top.array("voters"), nodes)
    constitution = top.raw("constitution", required=False)
    if constitution is not None and not isinstance(constitution, dict):
        raise ConfigFieldError("constitution: expected an object (the genesis rules)")
    top.done()
    return Network(name, network_id, members, nodes, voters, constitution)


def _network_id(text: str) -> bytes:
    if len(text) != 2 * NETWORK_ID_BYTES or _HEX.fullmatch(text) is None:
        raise ConfigFieldError(
            f"network_id: expected {2 * NETWORK_ID_BYTES} lowercase hex digits, got {text!r}"
        )
    return bytes.fromhex(text)


def _members(items: list[Any]) -> tuple[Member, ...]:
    if not 1 <= len(items) <= MAX_MEMBERS:
        raise ConfigFieldError(f"members: expected 1..{MAX_MEMBERS} members, got {len(items)}")
    members: list[Member] = []
    names: set[str] = set()
    keys: dict[Ed25519PublicKey, str] = {}
    for i, item in enumerate(items):
        where = f"members[{i}]"
        f = Fields(item, where)
        name = check_name(f.raw("name"), f.path("name"))
        key = _ed25519_hex(f.string("public_key"), f.path("public_key"))
        roles = f.array("roles")
        if not roles:
            raise ConfigFieldError(f"{f.path('roles')}: a member has at least one role")
        for j, role in enumerate(roles):
            if not isinstance(role, str) or ROLE_PATTERN.fullmatch(role) is None:
                raise ConfigFieldError(f"{f.path('roles')}[{j}]: {role!r} is not a valid role")
        if len(set(roles)) != len(roles):
            raise ConfigFieldError(f"{f.path('roles')}: a role is listed twice")
        f.done()
        if name in names:
            raise ConfigConsistencyError(f"{where}: member name {name!r} is used twice")
        if key in keys:
            raise ConfigConsistencyError(
                f"{where}: member {name!r} has the same public key as {keys[key]!r}"
            )
        names.add(name)
        keys[key] = name
        members.append(Member(name, key, tuple(roles)))
    return tuple(members)


def _nodes(
    items: list[Any], members: Mapping[str, Member], now: int | None
) -> tuple[NodeEntry, ...]:
    if not 1 <= len(items) <= MAX_NODES:
        raise ConfigFieldError(f"nodes: expected 1..{MAX_NODES} nodes, got {len(items)}")
    nodes: list[NodeEntry] = []
    seen: dict[str, dict[Any, str]] = {
        "name": {},
        "raft id": {},
        "identity key": {},
        "ledger certificate key": {},
        "location": {},
    }
    member_keys = {m.public_key for m in members.values()}
    for i, item in enumerate(items):
        where = f"nodes[{i}]"
        f = Fields(item, where)
        name = check_name(f.raw("name"), f.path("name"))
        member_name = check_name(f.raw("member"), f.path("member"))
        if member_name not in members:
            raise ConfigConsistencyError(f"{f.path('member')}: no member named {member_name!r}")
        designator = f.string("identity")
        try:
            identity = identity_from_designator(designator)
        except ConfigFieldError:
            raise ConfigFieldError(
                f"{f.path('identity')}: expected the node's Ed25519 TLS designator "
                "(52 lowercase base32 characters)"
            ) from None
        raft_id = f.integer("raft_id", low=1, high=2**RAFT_ID_BITS - 1)
        if raft_id != raft_id_for_key(identity):
            raise ConfigConsistencyError(
                f"{f.path('raft_id')}: {raft_id} is not the id of the node's identity key "
                f"({raft_id_for_key(identity)})"
            )
        loc = f.table("location")
        transport = loc.string("transport")
        if transport != TLS_TRANSPORT:
            raise ConfigFieldError(f"{loc.path('transport')}: only {TLS_TRANSPORT!r} is supported")
        host = check_host(loc.raw("host"), loc.path("host"))
        port = check_port(loc.raw("port"), loc.path("port"))
        loc.done()
        api_url = _api_url(f.string("api_url"), f.path("api_url"))
        cert = _ledger_cert(f.string("cert"), f.path("cert"))
        node_id = f.string("node_id")
        if node_id != cert.node_id:
            raise ConfigConsistencyError(
                f"{f.path('node_id')}: does not match the ledger certificate "
                f"(expected {cert.node_id})"
            )
        chain = _attestation(
            f.string("attestation"), f.path("attestation"), members[member_name], identity, now
        )
        f.done()
        if identity in member_keys:
            raise ConfigConsistencyError(f"{where}: a node's identity key may not be a member key")
        facts: dict[str, object] = {
            "name": name,
            "raft id": raft_id,
            "identity key": identity,
            "ledger certificate key": cert.node_id,
            "location": (host, port),
        }
        for what, value in facts.items():
            other = seen[what].get(value)
            if other is not None:
                raise ConfigConsistencyError(
                    f"{where}: node {name!r} has the same {what} as node {other!r}"
                )
            seen[what][value] = name
        nodes.append(NodeEntry(name, member_name, identity, host, port, api_url, cert, chain))
    return tuple(nodes)


def _voters(items: list[Any], nodes: tuple[NodeEntry, ...]) -> tuple[int, ...]:
    known = {n.raft_id for n in nodes}
    if not items:
        raise ConfigFieldError("voters: at least one node must vote")
    voters: list[int] = []
    for i, value in enumerate(items):
        if type(value) is not int:
            raise ConfigFieldError(f"voters[{i}]: expected a Raft node id, got {value!r}")
        if value not in known:
            raise ConfigConsistencyError(f"voters[{i}]: {value} is not the raft_id of any node")
        if value in voters:
            raise ConfigConsistencyError(f"voters[{i}]: {value} is listed twice")
        voters.append(value)
    return tuple(voters)


def _ed25519_hex(text: str, where: str) -> Ed25519PublicKey:
    if len(text) != 64 or _HEX.fullmatch(text) is None:
        raise ConfigFieldError(f"{where}: expected 64 lowercase hex digits (an Ed25519 key)")
    try:
        return Ed25519PublicKey.from_hex(text)
    except CharterError as exc:
        raise ConfigFieldError(f"{where}: {exc.message}") from None


def _api_url(text: str, where: str) -> str:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigFieldError(f"{where}: {text!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ConfigFieldError(f"{where}: expected http(s)://host:port, got {text!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigFieldError(f"{where}: a node's API URL has no credentials, query or fragment")
    check_host(parts.hostname, where)
    check_port(port, where)
    return text


def _ledger_cert(pem: str, where: str) -> NodeCert:
    try:
        return NodeCert.from_pem(pem)
    except CharterError as exc:
        raise ConfigFieldError(f"{where}: {exc.message}") from None


def _attestation(
    text: str, where: str, member: Member, identity: Ed25519PublicKey, now: int | None
) -> AttestationChain:
    try:
        chain = AttestationChain.from_text(text)
        verify_chain(chain, now=now, expected_root=member.public_key, expected_purpose=NODE)
    except CharterError as exc:
        raise ConfigAttestationError(
            f"{where}: does not vouch for this node on behalf of member {member.name!r}: "
            f"{exc.message}"
        ) from None
    if chain.leaf != identity:
        raise ConfigAttestationError(
            f"{where}: the chain vouches for another key, not the node's identity"
        )
    return chain


@dataclass(frozen=True, slots=True)
class NodeKeys:
    """A node's own key material, checked against its entry in the network file."""

    entry: NodeEntry
    identity: Ed25519PrivateKey
    ledger: P256PrivateKey
    attestation: AttestationChain


def load_node_keys(config: NodeConfig, network: Network) -> NodeKeys:
    """Load the node's keys and refuse to go on unless they are the ones the network names.

    A node started with another node's config, a stale network file or a replaced key
    would otherwise fail later, on every peer, as a mysterious authentication error.
    """
    entry = network.node(config.name)
    if entry.member != config.member:
        raise ConfigConsistencyError(
            f"node config says {config.name!r} acts for {config.member!r}, "
            f"the network file says {entry.member!r}"
        )
    # Key file errors (missing, mode wider than 0600, wrong type) keep their own
    # crypto.* and identity.* codes: they say exactly what to fix.
    identity = load_ed25519_private_key(config.keys.identity)
    ledger = load_p256_private_key(config.keys.ledger)
    cert = _ledger_cert(
        read_limited(config.keys.ledger_cert, "ledger certificate").decode("ascii", "replace"),
        str(config.keys.ledger_cert),
    )
    chain = AttestationChain.load(read_limited(config.keys.attestation, "attestation chain"))
    if identity.public_key != entry.identity:
        raise ConfigConsistencyError(
            f"{config.keys.identity} is not the identity key the network file names for "
            f"node {config.name!r}"
        )
    ledger_id = hashlib.sha256(ledger.public_key.spki_der()).hexdigest()
    if ledger_id != entry.node_id or cert.node_id != entry.node_id:
        raise ConfigConsistencyError(
            f"{config.keys.ledger} and {config.keys.ledger_cert} must hold the ledger key "
            f"the network file names for node {config.name!r} (node_id {entry.node_id[:16]}...)"
        )
    if chain.to_bytes() != entry.attestation.to_bytes():
        raise ConfigAttestationError(
            f"{config.keys.attestation} is not the attestation chain the network file holds "
            f"for node {config.name!r}"
        )
    return NodeKeys(entry, identity, ledger, chain)
