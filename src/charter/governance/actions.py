"""What each proposal action may say and what it does to the governance state.

Every kind has a schema: its arguments, each of one type. ``check`` validates an
``Action`` read from a request (untrusted); ``apply`` performs it on a ``Draft``,
raising ``ActionFailed`` (a rule name and a reason) when the state does not allow it
(an unknown member, a name taken, a threshold left unsatisfiable...).

JSON form (REST, CLI): ``{"kind": "add_member", "name": "m4", "public_key": "<hex>",
"roles": ["member"]}``; keys are hex, certificates PEM, thresholds and constitutions
objects (``docs/governance.md`` lists every kind).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509

from charter.codec.syrup import encode
from charter.crypto.keys import Ed25519PublicKey
from charter.errors import CharterError
from charter.governance import records as r
from charter.governance import state
from charter.governance.draft import Draft
from charter.governance.errors import GovernanceError, RequestFormatError
from charter.governance.join import check_measurement
from charter.governance.model import (
    DEFAULT_KIND,
    TOKEN_POOL_POLICIES,
    Action,
    AppUser,
    Constitution,
    GovNode,
    Intent,
    MemberInfo,
    user_key,
)
from charter.governance.thresholds import Threshold
from charter.ledger.engine.nodes import NODES_TABLE as DIRECTORY_TABLE
from charter.ledger.engine.nodes import DirectoryEntry, NodeStatus
from charter.ledger.trust import NodeCert


class ActionFailed(GovernanceError):
    """An action the current state does not allow; ``rule`` names the rule."""

    code = "gov.action"

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


# argument type name -> (Syrup checker, JSON -> Syrup, Syrup -> JSON)
_Conv = tuple[
    Callable[[object, str], object], Callable[[object, str], object], Callable[[Any], object]
]


def _key(value: object, what: str) -> bytes:
    raw = r.octets(value, what, size=32)
    try:
        Ed25519PublicKey.from_raw(raw)
    except (CharterError, ValueError):
        raise RequestFormatError(f"{what}: not an Ed25519 public key") from None
    return raw


def _optkey(value: object, what: str) -> bytes:
    raw = r.octets(value, what, limit=32)
    return _key(raw, what) if raw else raw


def _cert(value: object, what: str) -> bytes:
    der = r.octets(value, what)
    try:
        NodeCert.from_x509(x509.load_der_x509_certificate(der))
    except (CharterError, ValueError) as exc:
        raise RequestFormatError(f"{what}: {exc}") from None
    return der


def _hex_in(value: object, what: str) -> bytes:
    if type(value) is not str:
        raise RequestFormatError(f"{what}: expected hex text")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise RequestFormatError(f"{what}: expected hex text") from None


def _pem_in(value: object, what: str) -> bytes:
    if type(value) is not str:
        raise RequestFormatError(f"{what}: expected a PEM certificate")
    try:
        return NodeCert.from_pem(value).der
    except CharterError as exc:
        raise RequestFormatError(f"{what}: {exc.message}") from None


def _pem_out(der: bytes) -> str:
    return NodeCert.from_x509(x509.load_der_x509_certificate(der)).pem()


def _names_in(value: object, what: str) -> list[str]:
    if not isinstance(value, list):
        raise RequestFormatError(f"{what}: expected a list of names")
    return sorted({r.name(v, what) for v in value})


def _threshold(value: object, what: str) -> object:
    Threshold.from_record(value)
    return value


def _constitution(value: object, what: str) -> object:
    Constitution.from_record(value)
    return value


def _same(value: object, what: str) -> object:
    return value


_TYPES: Mapping[str, _Conv] = {
    "name": (r.name, _same, lambda v: v),
    "text": (lambda v, w: r.text(v, w), _same, lambda v: v),
    "int": (lambda v, w: r.integer(v, w, high=65535), _same, lambda v: v),
    "names": (lambda v, w: list(r.names(v, w)), _names_in, lambda v: list(v)),
    "map": (lambda v, w: r.string_map(v, w), _same, lambda v: dict(v)),
    "key": (_key, _hex_in, lambda v: v.hex()),
    "optkey": (_optkey, _hex_in, lambda v: v.hex()),
    "cert": (_cert, _pem_in, _pem_out),
    "measurement": (check_measurement, _same, lambda v: v),
    "policy": (lambda v, w: r.symbol_text(v, w, TOKEN_POOL_POLICIES), _same, lambda v: v),
    "threshold": (_threshold, lambda v, w: Threshold.from_json(v).to_record(), lambda v: Threshold.from_record(v).to_json()),
    "constitution": (_constitution, lambda v, w: Constitution.from_json(v).to_record(), lambda v: Constitution.from_record(v).to_json()),
}  # fmt: skip

# kind -> {argument: (type, default for JSON input or _OPTIONAL-free required)}
SCHEMAS: Final[Mapping[str, Mapping[str, tuple[str, object]]]] = {
    "add_member": {
        "name": ("name", None),
        "public_key": ("key", None),
        "roles": ("names", ["member"]),
        "data": ("map", {}),
    },
    "remove_member": {"name": ("name", None)},
    "set_member_roles": {"name": ("name", None), "roles": ("names", None)},
    "set_member_data": {"name": ("name", None), "data": ("map", None)},
    "add_node": {
        "name": ("name", None),
        "member": ("name", None),
        "identity": ("key", None),
        "ledger_cert": ("cert", None),
        "host": ("text", ""),
        "port": ("int", 0),
        "api_url": ("text", ""),
        "measurement": ("text", ""),
    },
    "trust_node": {"name": ("name", None)},
    "retire_node": {"name": ("name", None)},
    "add_measurement": {"measurement": ("measurement", None)},
    "remove_measurement": {"measurement": ("measurement", None)},
    "set_threshold": {"action": ("name", None), "threshold": ("threshold", None)},
    "set_constitution": {"constitution": ("constitution", None)},
    "set_token_policy": {"token_pools": ("policy", None)},
    "transfer_leadership": {"node": ("name", None)},
    "add_app_user": {
        "member": ("name", None),
        "name": ("name", None),
        "roles": ("names", ["user"]),
        "public_key": ("optkey", ""),
    },
    "remove_app_user": {"member": ("name", None), "name": ("name", None)},
    "trigger_snapshot": {},
}
KINDS: Final = tuple(SCHEMAS)

CONSTITUTIONAL: Final = frozenset(
    {
        "add_member",
        "remove_member",
        "set_member_roles",
        "add_measurement",
        "remove_measurement",
        "set_threshold",
        "set_constitution",
        "set_token_policy",
    }
)
"""Kinds that change the rules or who votes: accepting one drops the other open
proposals (their ballots were cast under the old rules)."""


def check(action: Action) -> Action:
    """``action`` if its kind is known and its arguments match the kind's schema."""
    schema = SCHEMAS.get(action.kind)
    if schema is None:
        raise RequestFormatError(f"action: unknown kind {action.kind[:64]!r}")
    if set(action.args) != set(schema):
        raise RequestFormatError(
            f"action {action.kind}: expected arguments {', '.join(sorted(schema)) or 'none'}"
        )
    for arg, (typ, _default) in schema.items():
        checker = _TYPES[typ][0]
        if checker(action.args[arg], f"{action.kind}.{arg}") != action.args[arg]:
            raise RequestFormatError(f"{action.kind}.{arg}: not in canonical form")
    return action


def from_json(value: object) -> Action:
    """An action from its JSON form (REST bodies, CLI), checked."""
    if not isinstance(value, dict) or type(value.get("kind")) is not str:
        raise RequestFormatError('action: expected an object with a "kind"')
    kind = value["kind"]
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise RequestFormatError(f"action: unknown kind {kind[:64]!r}")
    extra = set(value) - set(schema) - {"kind"}
    if extra:
        raise RequestFormatError(f"action {kind}: unknown arguments {', '.join(sorted(extra))}")
    args: dict[str, object] = {}
    for arg, (typ, default) in schema.items():
        if arg in value:
            raw = value[arg]
        elif default is not None:
            raw = default
        else:
            raise RequestFormatError(f"action {kind}: argument {arg!r} is required")
        args[arg] = _TYPES[typ][1](raw, f"{kind}.{arg}")
    return check(Action(kind, args))


def to_json(action: Action) -> dict[str, object]:
    schema = SCHEMAS.get(action.kind, {})
    out: dict[str, object] = {"kind": action.kind}
    for arg, value in action.args.items():
        typ = schema[arg][0] if arg in schema else "text"
        out[arg] = _TYPES[typ][2](value)
    return out


# -- applying ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Where:
    """The transaction an action runs in (intents record it)."""

    tx_id: str


def _member(d: Draft, name: str) -> MemberInfo:
    m = state.member(d, name)
    if m is None or not m.active:
        raise ActionFailed("gov.member.unknown", f"no active member {name!r}")
    return m


def _node(d: Draft, name: str) -> GovNode:
    n = state.node_info(d, name)
    if n is None:
        raise ActionFailed("gov.node.unknown", f"no node {name!r}")
    return n


def _put_member(d: Draft, m: MemberInfo) -> None:
    d.put(state.MEMBERS_TABLE, m.name, m.encode())


def apply_node(d: Draft, n: GovNode) -> None:
    d.put(state.NODES_TABLE, n.name, n.encode())
    entry = DirectoryEntry(n.name, n.member, n.identity, n.ledger_cert, n.status)
    d.put(DIRECTORY_TABLE, n.name, entry.encode())


def _put_constitution(d: Draft, c: Constitution) -> None:
    d.put(state.CONSTITUTION_TABLE, state.CURRENT, c.encode())


def _a(args: Mapping[str, object], key: str) -> Any:
    return args[key]


def apply(d: Draft, action: Action, where: Where) -> None:
    """Perform one checked action on ``d``."""
    a = action.args
    kind = action.kind
    const = state.constitution(d)
    if kind == "add_member":
        name = _a(a, "name")
        old = state.member(d, name)
        if old is not None and old.active:
            raise ActionFailed("gov.member.exists", f"member {name!r} exists")
        key = Ed25519PublicKey.from_raw(_a(a, "public_key"))
        for m in state.active_members(d):
            if m.public_key == key:
                raise ActionFailed("gov.member.key", f"member {m.name!r} has that key")
        _put_member(d, MemberInfo(name, key, tuple(_a(a, "roles")), dict(_a(a, "data"))))
    elif kind == "remove_member":
        m = _member(d, _a(a, "name"))
        _put_member(d, MemberInfo(m.name, m.public_key, m.roles, m.data, "removed"))
    elif kind == "set_member_roles":
        m = _member(d, _a(a, "name"))
        _put_member(d, MemberInfo(m.name, m.public_key, tuple(_a(a, "roles")), m.data))
    elif kind == "set_member_data":
        m = _member(d, _a(a, "name"))
        _put_member(d, MemberInfo(m.name, m.public_key, m.roles, dict(_a(a, "data"))))
    elif kind == "add_node":
        _add_node(d, a)
    elif kind == "trust_node":
        n = _node(d, _a(a, "name"))
        if n.status is not NodeStatus.PENDING:
            raise ActionFailed("gov.node.status", f"node {n.name!r} is {n.status.value}")
        _member(d, n.member)
        apply_node(d, _with_status(n, NodeStatus.TRUSTED))
    elif kind == "retire_node":
        n = _node(d, _a(a, "name"))
        if n.status is NodeStatus.RETIRED:
            raise ActionFailed("gov.node.status", f"node {n.name!r} is already retired")
        apply_node(d, _with_status(n, NodeStatus.RETIRED))
        if not any(x.status is NodeStatus.TRUSTED for x in state.nodes(d)):
            raise ActionFailed("gov.node.last", "retiring it would leave no trusted node")
    elif kind == "add_measurement":
        value = _a(a, "measurement")
        if value in const.measurements:
            raise ActionFailed("gov.measurement.exists", f"{value} is already allowed")
        new = tuple(sorted((*const.measurements, value)))
        _put_constitution(d, const.with_changes(measurements=new))
    elif kind == "remove_measurement":
        value = _a(a, "measurement")
        if value not in const.measurements:
            raise ActionFailed("gov.measurement.unknown", f"{value} is not allowed now")
        new = tuple(m for m in const.measurements if m != value)
        _put_constitution(d, const.with_changes(measurements=new))
    elif kind == "set_threshold":
        target = _a(a, "action")
        if target != DEFAULT_KIND and target not in SCHEMAS:
            raise ActionFailed("gov.threshold.kind", f"no action kind {target!r}")
        thresholds = dict(const.thresholds)
        thresholds[target] = Threshold.from_record(_a(a, "threshold"))
        _put_constitution(d, const.with_changes(thresholds=thresholds))
    elif kind == "set_constitution":
        _put_constitution(d, Constitution.from_record(_a(a, "constitution")))
    elif kind == "set_token_policy":
        _put_constitution(d, const.with_changes(token_pools=_a(a, "token_pools")))
    elif kind == "transfer_leadership":
        n = _node(d, _a(a, "node"))
        if n.status is not NodeStatus.TRUSTED:
            raise ActionFailed("gov.node.status", f"node {n.name!r} is not trusted")
        intent = Intent("leadership", n.name, where.tx_id)
        d.put(state.INTENTS_TABLE, "leadership", intent.encode())
    elif kind == "add_app_user":
        owner = _member(d, _a(a, "member")).name
        name = _a(a, "name")
        if state.user(d, owner, name) is not None:
            raise ActionFailed("gov.user.exists", f"user {owner}/{name} exists")
        raw = _a(a, "public_key")
        user_pub = Ed25519PublicKey.from_raw(raw) if raw else None
        u = AppUser(owner, name, tuple(_a(a, "roles")), user_pub)
        d.put(state.USERS_TABLE, u.key, u.encode())
    elif kind == "remove_app_user":
        owner, name = _a(a, "member"), _a(a, "name")
        if state.user(d, owner, name) is None:
            raise ActionFailed("gov.user.unknown", f"no user {owner}/{name}")
        d.put(state.USERS_TABLE, user_key(owner, name), None)
    elif kind == "trigger_snapshot":
        d.put(state.INTENTS_TABLE, "snapshot", Intent("snapshot", "", where.tx_id).encode())
    else:  # pragma: no cover - check() refuses unknown kinds first
        raise ActionFailed("gov.action.kind", f"unknown action kind {kind!r}")


def _with_status(n: GovNode, status: NodeStatus) -> GovNode:
    return GovNode(
        n.name, n.member, n.identity, n.ledger_cert, n.host, n.port, n.api_url, n.measurement,
        status,
    )  # fmt: skip


def _add_node(d: Draft, a: Mapping[str, object]) -> None:
    name = _a(a, "name")
    owner = _member(d, _a(a, "member")).name
    identity = Ed25519PublicKey.from_raw(_a(a, "identity"))
    cert = NodeCert.from_x509(x509.load_der_x509_certificate(_a(a, "ledger_cert")))
    node = GovNode(
        name, owner, identity, cert, _a(a, "host"), _a(a, "port"), _a(a, "api_url"),
        _a(a, "measurement"), NodeStatus.PENDING,
    )  # fmt: skip
    check_new_node(d, node)
    apply_node(d, node)


def check_new_node(d: Draft, node: GovNode) -> None:
    """Refuse a node whose name, identity key or ledger key another node has."""
    for other in state.nodes(d):
        if other.name == node.name:
            raise ActionFailed("gov.node.exists", f"node {node.name!r} exists")
        if other.identity == node.identity:
            raise ActionFailed("gov.node.key", f"node {other.name!r} has that identity key")
        if other.ledger_cert.node_id == node.ledger_cert.node_id:
            raise ActionFailed("gov.node.key", f"node {other.name!r} has that ledger key")


def check_satisfiable(d: Draft) -> None:
    """Every threshold must remain reachable by the active members."""
    const = state.constitution(d)
    voters = len(state.active_members(d))
    if voters == 0:
        raise ActionFailed("gov.threshold.unsatisfiable", "no active member would remain")
    for kind, t in sorted(const.thresholds.items()):
        if not t.satisfiable(voters):
            raise ActionFailed(
                "gov.threshold.unsatisfiable",
                f"the {kind} threshold ({t.rule} {t.count or ''}".rstrip()
                + f") could not be met by {voters} active members",
            )


def apply_all(d: Draft, actions: tuple[Action, ...], where: Where) -> Draft:
    """A child of ``d`` with every action applied, or ``ActionFailed``."""
    child = d.child()
    for action in actions:
        apply(child, action, where)
    check_satisfiable(child)
    return child


def canonical_args(action: Action) -> bytes:
    return encode(action.to_record())


__all__ = [
    "CONSTITUTIONAL",
    "KINDS",
    "SCHEMAS",
    "ActionFailed",
    "Where",
    "apply",
    "apply_all",
    "apply_node",
    "check",
    "check_new_node",
    "check_satisfiable",
    "from_json",
    "to_json",
]
