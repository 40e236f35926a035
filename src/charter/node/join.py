"""A node that joins a running network: its files, its view of the network, its request.

A joined node is not in the network file (the file names the genesis nodes and is the
same for everyone, since governance derives the genesis constitution from it), so it
runs with the genesis file unchanged plus:

- its own entry, rebuilt from its key files and ``node.toml`` (``load_keys``);
- ``join.json`` in its data directory, written by ``charter node join`` once the members
  trusted it: the network it joined and the trusted peers at that moment, so that it
  admits and can reach a leader that itself joined later than genesis
  (``JoinRecord``);
- empty Raft storage (``bootstrap_conf`` is None): it learns the configuration from the
  leader's snapshot and log, as a learner, and is promoted by the leader's membership
  watcher (``charter.node.membership``).

Its engine is built with the genesis nodes plus itself (``ledger_view``): the ledger
service requires its own entry, and the directory entry governance wrote (pending, then
trusted) overrides that genesis entry for every decision, as on every other node.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx

from charter.consensus.types import ConfState
from charter.crypto.keyfile import load_ed25519_private_key, load_p256_private_key
from charter.crypto.keys import Ed25519PrivateKey
from charter.errors import CharterError
from charter.governance.join import JoinRequest, SignedJoinRequest, new_nonce, sign_join_request
from charter.identity.attestation import NODE, AttestationChain, verify_chain
from charter.ledger.trust import NodeCert
from charter.node.config import (
    ConfigAttestationError,
    ConfigConsistencyError,
    ConfigFieldError,
    ConfigReadError,
    NodeConfig,
    read_limited,
)
from charter.node.network import (
    Network,
    NodeEntry,
    NodeKeys,
    identity_from_designator,
    load_node_keys,
)

if TYPE_CHECKING:
    from charter.node.ledger_service import LedgerService
    from charter.node.membership import Locate

__all__ = [
    "JOIN_FILE",
    "JOIN_FORMAT",
    "CatchUp",
    "JoinError",
    "JoinPeer",
    "JoinRecord",
    "JoinRefused",
    "NodePlan",
    "bootstrap_conf",
    "build_join_request",
    "catch_up_state",
    "governance_locator",
    "is_joined",
    "leader_view",
    "ledger_view",
    "load_keys",
    "peers_of",
    "prepare_node",
    "read_words",
    "send_join_request",
    "wait_trusted",
    "wait_voter",
]

JOIN_FILE: Final = "join.json"
JOIN_FORMAT: Final = 1


class JoinError(CharterError):
    """Joining a network failed (refused, timed out, or the node's files disagree)."""

    code = "node.join"


@dataclass(frozen=True, slots=True)
class JoinPeer:
    """A trusted node as the joiner learnt it when it was trusted."""

    name: str
    identity: str
    """TLS designator of its identity key."""
    host: str
    port: int
    api_url: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "identity": self.identity,
            "host": self.host,
            "port": self.port,
            "api_url": self.api_url,
        }

    @classmethod
    def from_json(cls, doc: Any) -> JoinPeer:
        if not isinstance(doc, dict):
            raise ConfigFieldError("join.json: a peer is an object")
        name, identity, host, port = (doc.get(k) for k in ("name", "identity", "host", "port"))
        api_url = doc.get("api_url")
        if not (isinstance(name, str) and isinstance(identity, str) and isinstance(host, str)):
            raise ConfigFieldError("join.json: a peer has string name, identity and host")
        if type(port) is not int or not 0 < port < 65536:
            raise ConfigFieldError(f"join.json: peer {name!r} has no valid port")
        if api_url is not None and not isinstance(api_url, str):
            raise ConfigFieldError(f"join.json: peer {name!r} api_url is a string")
        identity_from_designator(identity)
        return cls(name, identity, host, port, api_url)


@dataclass(frozen=True, slots=True)
class JoinRecord:
    """``join.json``: this node joined ``network_id`` and was trusted with these peers."""

    network_id: bytes
    name: str
    member: str
    peers: tuple[JoinPeer, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "charter_join": JOIN_FORMAT,
            "network_id": self.network_id.hex(),
            "name": self.name,
            "member": self.member,
            "peers": [p.to_json() for p in self.peers],
        }

    def save(self, data_dir: Path) -> Path:
        path = data_dir / JOIN_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, data_dir: Path) -> JoinRecord | None:
        path = data_dir / JOIN_FILE
        if not path.exists():
            return None
        try:
            doc = json.loads(read_limited(path, "join record").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigReadError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("charter_join") != JOIN_FORMAT:
            raise ConfigFieldError(f"{path}: not a join record of format {JOIN_FORMAT}")
        network_id, name, member, peers = (
            doc.get(k) for k in ("network_id", "name", "member", "peers")
        )
        if not (isinstance(network_id, str) and isinstance(name, str) and isinstance(member, str)):
            raise ConfigFieldError(f"{path}: network_id, name and member are strings")
        if not isinstance(peers, list):
            raise ConfigFieldError(f"{path}: peers is a list")
        try:
            raw_id = bytes.fromhex(network_id)
        except ValueError:
            raise ConfigFieldError(f"{path}: network_id is hex") from None
        return cls(raw_id, name, member, tuple(JoinPeer.from_json(p) for p in peers))


def is_joined(config: NodeConfig, network: Network) -> bool:
    """True for a node that is not one of the network file's (genesis) nodes."""
    return all(n.name != config.name for n in network.nodes)


def _own_entry(config: NodeConfig, identity: Ed25519PrivateKey) -> NodeEntry:
    cert = NodeCert.from_pem(
        read_limited(config.keys.ledger_cert, "ledger certificate").decode("ascii", "replace")
    )
    chain = AttestationChain.load(read_limited(config.keys.attestation, "attestation chain"))
    try:
        verify_chain(chain, expected_root=chain.root, expected_purpose=NODE)
    except CharterError as exc:
        raise ConfigAttestationError(
            f"{config.keys.attestation} does not vouch for this node: {exc.message}"
        ) from None
    if chain.leaf != identity.public_key:
        raise ConfigAttestationError(
            f"{config.keys.attestation} vouches for another key, not {config.keys.identity}"
        )
    return NodeEntry(
        name=config.name,
        member=config.member,
        identity=identity.public_key,
        host=config.ocapn.host,
        port=config.ocapn.port,
        api_url=f"http://{config.api.host}:{config.api.port}",
        cert=cert,
        attestation=chain,
    )


def load_keys(config: NodeConfig, network: Network) -> NodeKeys:
    """The node's keys: checked against the network file for a genesis node, against
    ``join.json`` and its own key files for a joined node."""
    if not is_joined(config, network):
        return load_node_keys(config, network)
    record = JoinRecord.load(config.data_dir)
    if record is None:
        raise ConfigConsistencyError(
            f"node {config.name!r} is not in network {network.name}'s file and has not "
            f"joined it ({config.data_dir / JOIN_FILE} is missing): run charter node join"
        )
    if record.network_id != network.network_id or record.name != config.name:
        raise ConfigConsistencyError(
            f"{config.data_dir / JOIN_FILE} is for node {record.name!r} of network "
            f"{record.network_id.hex()}, not {config.name!r} of {network.network_id.hex()}"
        )
    identity = load_ed25519_private_key(config.keys.identity)
    ledger = load_p256_private_key(config.keys.ledger)
    entry = _own_entry(config, identity)
    ledger_id = hashlib.sha256(ledger.public_key.spki_der()).hexdigest()
    if ledger_id != entry.node_id:
        raise ConfigConsistencyError(
            f"{config.keys.ledger} is not the key of certificate {config.keys.ledger_cert}"
        )
    return NodeKeys(entry, identity, ledger, entry.attestation)


def ledger_view(network: Network, entry: NodeEntry) -> Network:
    """The network the node's ledger service is built with: the file's nodes and itself."""
    if any(n.name == entry.name for n in network.nodes):
        return network
    return Network(
        network.name, network.network_id, network.members, (*network.nodes, entry), network.voters
    )


def bootstrap_conf(network: Network, entry: NodeEntry) -> ConfState | None:
    """The founding Raft configuration for a genesis node; None (learn it) for a joiner."""
    if any(n.name == entry.name for n in network.nodes):
        return ConfState(frozenset(network.voters))
    return None


def build_join_request(
    network: Network,
    config: NodeConfig,
    identity: Ed25519PrivateKey,
    measurement: str,
    *,
    now_ms: int | None = None,
) -> SignedJoinRequest:
    """The joining node's signed request, from its files and code measurement."""
    entry = _own_entry(config, identity)
    request = JoinRequest(
        network_id=network.network_id,
        name=config.name,
        member=config.member,
        identity=identity.public_key,
        ledger_cert=entry.cert,
        host=config.ocapn.host,
        port=config.ocapn.port,
        api_url=entry.api_url,
        measurement=measurement,
        created_ms=int(time.time() * 1000) if now_ms is None else now_ms,
        nonce=new_nonce(),
        attestation=entry.attestation,
    )
    return sign_join_request(request, identity)


def governance_locator(service: LedgerService) -> Locate:
    """Where a node listens, from governance's node record in the ledger's state."""
    from charter.governance import state as gov_state

    engine = service.engine

    def locate(name: str) -> tuple[str, int, str] | None:
        try:
            info = gov_state.node_info(engine, name)
        except CharterError:
            return None
        if info is None or not info.host or not 0 < info.port < 65536:
            return None
        return info.host, info.port, info.api_url

    return locate


def peers_of(doc: Mapping[str, Any]) -> tuple[JoinPeer, ...]:
    """The ``peers`` of a ``GET /api/v1/gov/join/{node}`` answer."""
    items = doc.get("peers")
    if not isinstance(items, list):
        raise JoinError("the join state names no peers")
    try:
        return tuple(JoinPeer.from_json(p) for p in items)
    except CharterError as exc:
        raise JoinError(f"the join state's peers are malformed: {exc.message}") from None


# -- the joiner's side: files, request, waiting ---------------------------------------

KEYS_DIR: Final = "keys"
DATA_DIR: Final = "data"
CONFIG_FILE: Final = "node.toml"
NETWORK_COPY: Final = "network.json"


def read_words(path: Path) -> str:
    """The 24 words of a words file (lines starting with ``#`` are comments)."""
    text = read_limited(path, "words file").decode("utf-8", "replace")
    return " ".join(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


@dataclass(frozen=True, slots=True)
class NodePlan:
    """Where and as what a joining node will run."""

    node_dir: Path
    name: str
    member: str
    host: str
    api_port: int
    ocapn_port: int
    metrics_port: int | None = None
    node_index: int = 0


def prepare_node(plan: NodePlan, network_file: Path, words: str) -> Path:
    """Create (or reuse) the node's keys, ``node.toml`` and a copy of the network file;
    returns the config path. The node key is derived from the member's mnemonic and
    attested by the member root, as a genesis node's is."""
    from charter.crypto.certs import self_signed_certificate, write_certificate
    from charter.crypto.keyfile import write_private_key
    from charter.crypto.keys import P256PrivateKey
    from charter.identity.attestation import attest
    from charter.identity.root import RootIdentity, node_path
    from charter.node.config import KeyPaths, Listen, Tuning, load_node_config
    from charter.node.network import load_network

    network = load_network(network_file)
    config_path = plan.node_dir / CONFIG_FILE
    if config_path.exists():
        config = load_node_config(config_path)
        if config.name != plan.name or config.member != plan.member:
            raise JoinError(
                f"{config_path} is for node {config.name!r} of {config.member!r}, "
                f"not {plan.name!r} of {plan.member!r}"
            )
        return config_path
    identity = RootIdentity.from_mnemonic(words)
    root_key = identity.root_key()
    node_key = identity.derive(node_path(plan.node_index))
    plan.node_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys_dir = plan.node_dir / KEYS_DIR
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    data_dir = plan.node_dir / DATA_DIR
    data_dir.mkdir(mode=0o700, exist_ok=True)
    keys = KeyPaths(
        identity=keys_dir / "identity.pem",
        ledger=keys_dir / "ledger.pem",
        ledger_cert=keys_dir / "ledger.crt",
        attestation=keys_dir / "node.chain",
    )
    if not keys.identity.exists():
        write_private_key(keys.identity, node_key)
    elif load_ed25519_private_key(keys.identity).public_key != node_key.public_key:
        raise JoinError(f"{keys.identity} is not the node key these words derive")
    if not keys.ledger.exists():
        ledger_key = P256PrivateKey.generate()
        write_private_key(keys.ledger, ledger_key)
        cert = self_signed_certificate(ledger_key, common_name=f"{network.name}/{plan.name}")
        write_certificate(keys.ledger_cert, cert)
    chain = attest(root_key, node_key.public_key, NODE, epoch=0)
    keys.attestation.write_text(chain.to_text(), encoding="ascii")
    copy = plan.node_dir / NETWORK_COPY
    copy.write_text(network.to_text(), encoding="utf-8")
    config = NodeConfig(
        name=plan.name,
        member=plan.member,
        network_file=copy,
        data_dir=data_dir,
        keys=keys,
        ocapn=Listen(plan.host, plan.ocapn_port),
        api=Listen(plan.host, plan.api_port),
        metrics=None if plan.metrics_port is None else Listen(plan.host, plan.metrics_port),
        tuning=Tuning(signature_interval_ms=100),
    )
    config.save(config_path)
    return config_path


# -- talking to the network over REST ---------------------------------------------------

POLL_INTERVAL: Final = 0.2
HTTP_TIMEOUT: Final = 10.0


class JoinRefused(JoinError):
    """The members' ledger refused the node (e.g. its code measurement is not allowed)."""

    code = "node.join.refused"


@dataclass(frozen=True, slots=True)
class CatchUp:
    """One look at a joining node's progress."""

    phase: str
    """``starting``, ``snapshot``, ``catching up``, ``learner`` or ``voter``."""
    applied: int
    target: int
    membership: str
    unit: str = "entries"
    """What ``applied`` and ``target`` count: log ``entries``, or snapshot ``bytes``."""


async def send_join_request(
    client: httpx.AsyncClient, urls: Sequence[str], signed: SignedJoinRequest
) -> tuple[str, dict[str, Any]]:
    """POST the request to the first member node that answers; (its URL, the answer).

    A refusal is final (``JoinRefused``); an unreachable or unavailable node is skipped.
    """
    body = {"request": base64.b64encode(signed.encode()).decode("ascii")}
    problems: list[str] = []
    for url in urls:
        try:
            r = await client.post(f"{url}/api/v1/gov/join", json=body, timeout=HTTP_TIMEOUT * 3)
        except httpx.HTTPError as exc:
            problems.append(f"{url}: {type(exc).__name__}")
            continue
        doc = _json(r)
        if r.status_code in (200, 202):
            return url, doc
        if r.status_code in (400, 403, 409):
            detail = str(doc.get("detail") or r.text[:200])
            raise JoinRefused(f"node {signed.request.name!r} refused by {url}: {detail}")
        problems.append(f"{url}: HTTP {r.status_code} {doc.get('detail', '')}".strip())
    raise JoinError("no member node took the join request (" + "; ".join(problems) + ")")


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        doc = r.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


async def wait_trusted(
    client: httpx.AsyncClient,
    urls: Sequence[str],
    name: str,
    *,
    within: float,
    on_state: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Poll the join state at the member nodes until ``trusted``; the trusted answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last = ""
    while True:
        for url in urls:
            try:
                r = await client.get(f"{url}/api/v1/gov/join/{name}", timeout=HTTP_TIMEOUT)
            except httpx.HTTPError:
                continue
            if r.status_code != 200:
                continue
            doc = _json(r)
            state = str(doc.get("status", ""))
            if state != last:
                last = state
                if on_state is not None:
                    on_state(state)
            if state == "trusted" and "peers" in doc:
                return doc
            if state == "refused":
                raise JoinRefused(f"node {name!r} was refused: {doc.get('reason')}")
            if state == "retired":
                raise JoinRefused(f"node {name!r} is retired")
            break
        if loop.time() >= deadline:
            raise JoinError(
                f"node {name!r} was not trusted within {within:g} s (last state: {last or '?'})"
            )
        await asyncio.sleep(POLL_INTERVAL)


async def catch_up_state(client: httpx.AsyncClient, api_url: str) -> CatchUp | None:
    """The node's own view of its progress (``/api/v1/membership``), if it answers."""
    try:
        r = await client.get(f"{api_url}/api/v1/membership", timeout=HTTP_TIMEOUT)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    doc = _json(r)
    applied = doc.get("applied_index")
    commit = doc.get("commit_index")
    membership = str(doc.get("membership", "none"))
    if type(applied) is not int or type(commit) is not int:
        return None
    if membership in ("voter", "leader"):
        phase = "voter"
    elif applied == 0:
        phase = "snapshot"
    elif applied < commit:
        phase = "catching up"
    elif membership == "learner":
        phase = "learner"
    else:
        phase = "catching up"
    return CatchUp(phase, applied, max(commit, applied), membership)


async def leader_view(
    client: httpx.AsyncClient, urls: Sequence[str], name: str
) -> tuple[int, dict[str, int] | None] | None:
    """The leader's commit index and, while it sends ``name`` a snapshot, the bytes of it
    acknowledged so far (from the leader's ``/api/v1/membership``)."""
    for url in urls:
        try:
            r = await client.get(f"{url}/api/v1/membership", timeout=HTTP_TIMEOUT)
        except httpx.HTTPError:
            continue
        doc = _json(r)
        commit = doc.get("commit_index")
        if doc.get("role") != "leader" or type(commit) is not int:
            continue
        rows = doc.get("nodes")
        snapshot: dict[str, int] | None = None
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and row.get("name") == name:
                snap = row.get("snapshot")
                if isinstance(snap, dict) and all(
                    type(snap.get(k)) is int for k in ("acked", "size")
                ):
                    snapshot = {"acked": snap["acked"], "size": snap["size"]}
        return commit, snapshot
    return None


async def wait_voter(
    client: httpx.AsyncClient,
    name: str,
    api_url: str,
    member_urls: Sequence[str],
    *,
    within: float,
    on_progress: Callable[[CatchUp], None] | None = None,
    exited: Callable[[], int | None] | None = None,
) -> CatchUp:
    """Follow the started node ``name`` until it is a voter; bounded by ``within``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: CatchUp | None = None
    while True:
        state = await catch_up_state(client, api_url)
        if state is not None:
            view = await leader_view(client, member_urls, name)
            if view is not None:
                target, snapshot = view
                if snapshot is not None and state.phase != "voter":
                    state = CatchUp(
                        "snapshot", snapshot["acked"], snapshot["size"], state.membership, "bytes"
                    )
                elif target > state.target:
                    state = CatchUp(state.phase, state.applied, target, state.membership)
            last = state
            if on_progress is not None:
                on_progress(state)
            if state.phase == "voter":
                return state
        elif exited is not None and (code := exited()) is not None:
            raise JoinError(f"the node process exited with status {code}")
        if loop.time() >= deadline:
            where = "not answering" if last is None else f"{last.phase} at {last.applied}"
            raise JoinError(f"the node did not become a voter within {within:g} s ({where})")
        await asyncio.sleep(POLL_INTERVAL)
