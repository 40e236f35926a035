"""Who takes part in consensus follows who governance trusts.

Governance decides on the ledger which nodes are ``trusted`` or ``retired``
(``charter.nodes``, the engine's directory); this module makes the Raft configuration and
the transport follow, on every node, from ledger state and the Raft configuration alone
(never from memory of what it did before), so it is idempotent across leader changes and
restarts:

- every node keeps a transport link to each trusted node (its location comes from
  governance's node record, or the network file for genesis nodes) and admits its TLS key
  (``Admission``); a retired node keeps its link until it has left the Raft configuration;
- the leader, one single-server change at a time (``plan``, pure): removes a retired
  learner or voter (transferring leadership first if the leader itself is retired, so the
  network stays available), adds a trusted node that is not in the configuration as a
  learner, and promotes a trusted learner to voter once its match index is within
  ``margin`` of the commit index (the Raft core refuses a promotion that would be unsafe).

``MembershipWatcher.run`` is the loop; ``MembershipComponent`` plugs it into a node next to
the join router (``charter.api.join``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from charter.consensus.errors import ConsensusError
from charter.consensus.progress import Progress, ProgressState
from charter.consensus.types import ConfChange, ConfChangeKind, ConfState, Role
from charter.crypto.keys import Ed25519PublicKey
from charter.ledger.engine import ApplyResult, CommandHandler
from charter.ledger.engine.nodes import NODES_TABLE, NodeStatus
from charter.node.network import raft_id_for_key, tls_designator
from charter.ocapn.locator import PeerLocation
from charter.ocapn.netlayer.tls import TLS_TRANSPORT

if TYPE_CHECKING:
    from fastapi import APIRouter

    from charter.node.components import NodeContext
    from charter.node.ledger_service import LedgerService

__all__ = [
    "COMPONENT_NAME",
    "Admission",
    "ConfStep",
    "KnownNode",
    "MembershipComponent",
    "MembershipWatcher",
    "StepKind",
    "known_nodes",
    "plan",
]

log = logging.getLogger(__name__)

COMPONENT_NAME: Final = "membership"
DEFAULT_PROMOTE_MARGIN: Final = 0
"""How far (in entries) a learner's match index may trail the commit index to be promoted."""
DEFAULT_PERIOD: Final = 0.1
"""Seconds between looks at the learners' progress (directory changes wake it at once)."""
IDLE_LOOKS: Final = 10
"""A node that does not lead looks every this many periods even if nothing woke it."""


# -- who is who ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KnownNode:
    """One node as the ledger knows it now."""

    name: str
    identity: Ed25519PublicKey
    status: NodeStatus
    location: PeerLocation | None = None
    """Where its OCapN runtime listens (None: not known, so no link and no learner)."""
    api_url: str | None = None
    genesis: bool = False

    @property
    def raft_id(self) -> int:
        return raft_id_for_key(self.identity)

    @property
    def designator(self) -> str:
        return tls_designator(self.identity)


Locate = Callable[[str], "tuple[str, int, str] | None"]
"""A node name -> (host, port, api_url) from governance's node record, if any."""


def tls_location(identity: Ed25519PublicKey, host: str, port: int) -> PeerLocation:
    return PeerLocation(tls_designator(identity), TLS_TRANSPORT, {"host": host, "port": str(port)})


def known_nodes(service: LedgerService, locate: Locate | None = None) -> dict[int, KnownNode]:
    """Every node the ledger knows, by Raft id: the genesis nodes of the network (unless
    governance wrote them since) and the directory's nodes with their locations."""
    out: dict[int, KnownNode] = {}
    directory = service.engine.directory()
    peers = service.network.raft.peers
    for nid, member in service.network.members.items():
        if member.name in directory:
            continue
        out[nid] = KnownNode(
            member.name,
            member.batch_key,
            NodeStatus.TRUSTED,
            peers.get(nid),
            None,
            genesis=True,
        )
    by_name = {m.name: nid for nid, m in service.network.members.items()}
    for name, entry in sorted(directory.items()):
        # a node the service was built with keeps its id; any other's is its key's
        nid = by_name.get(name) or raft_id_for_key(entry.batch_key)
        location: PeerLocation | None = None
        api_url: str | None = None
        where = locate(name) if locate is not None else None
        if where is not None:
            host, port, api_url = where
            location = tls_location(entry.batch_key, host, port)
        elif nid in peers:
            location = peers[nid]
        out[nid] = KnownNode(name, entry.batch_key, entry.status, location, api_url)
    return out


# -- the leader's decisions (pure) -----------------------------------------------------


class StepKind(StrEnum):
    ADD_LEARNER = "add_learner"
    PROMOTE = "promote"
    REMOVE = "remove"
    TRANSFER = "transfer"


@dataclass(frozen=True, slots=True)
class ConfStep:
    """One thing the leader should do next about the configuration."""

    kind: StepKind
    node_id: int
    reason: str


def plan(
    *,
    leader: int,
    conf: ConfState,
    nodes: Mapping[int, KnownNode],
    matches: Mapping[int, int],
    commit: int,
    margin: int = DEFAULT_PROMOTE_MARGIN,
) -> ConfStep | None:
    """The next single-server change for ``leader`` to make, or None.

    Order: removals first (learners, then voters; the leader last, by handing over
    leadership first), then additions, then promotions, each in ascending node id so
    every leader takes the same path. A node the ledger does not know is left alone.
    Only a node whose location is known is added (the leader must be able to reach it).
    """
    members = conf.voters | conf.learners
    retired = sorted(
        nid for nid in members if nid in nodes and nodes[nid].status is not NodeStatus.TRUSTED
    )
    for nid in retired:
        if nid in conf.learners:
            return ConfStep(StepKind.REMOVE, nid, f"{nodes[nid].name} is {nodes[nid].status}")
    for nid in retired:
        if nid == leader:
            continue
        if conf.voters - {nid}:
            return ConfStep(StepKind.REMOVE, nid, f"{nodes[nid].name} is {nodes[nid].status}")
    if leader in retired:
        stay = [v for v in conf.voters if v != leader and v not in retired]
        if stay:
            # the most caught-up voter that stays; ties to the lowest id
            to = min(stay, key=lambda v: (-matches.get(v, 0), v))
            return ConfStep(
                StepKind.TRANSFER, to, f"the leader {nodes[leader].name} is {nodes[leader].status}"
            )
    for nid, node in sorted(nodes.items()):
        if node.status is NodeStatus.TRUSTED and nid not in members and node.location is not None:
            return ConfStep(StepKind.ADD_LEARNER, nid, f"{node.name} is trusted")
    for nid in sorted(conf.learners):
        learner = nodes.get(nid)
        if learner is None or learner.status is not NodeStatus.TRUSTED:
            continue
        if matches.get(nid, 0) >= commit - margin:
            return ConfStep(StepKind.PROMOTE, nid, f"{learner.name} caught up")
    return None


# -- TLS admission ---------------------------------------------------------------------


class Admission:
    """The TLS netlayer's ``allow``: which node keys may open a session with this node.

    Starts with the network file's node keys; the watcher replaces the dynamic part with
    the keys of nodes the ledger trusts (and of nodes still in the Raft configuration).
    """

    def __init__(self, pinned: Iterable[str]) -> None:
        self._pinned = frozenset(pinned)
        self._revoked: frozenset[str] = frozenset()
        self._dynamic: frozenset[str] = frozenset()

    def __call__(self, designator: str) -> bool:
        if designator in self._dynamic:
            return True
        return designator in self._pinned and designator not in self._revoked

    def pin(self, designators: Iterable[str]) -> None:
        """Admit these keys as the network file's are (a joined node's known peers)."""
        self._pinned = self._pinned | frozenset(designators)

    def update(self, allowed: Iterable[str], revoked: Iterable[str] = ()) -> None:
        self._dynamic = frozenset(allowed)
        self._revoked = frozenset(revoked)

    @property
    def allowed(self) -> frozenset[str]:
        return (self._pinned - self._revoked) | self._dynamic


# -- the watcher -----------------------------------------------------------------------


@dataclass
class MembershipStats:
    steps: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    last_step: str | None = None


class MembershipWatcher:
    """Keeps transport, admission and (on the leader) the Raft configuration in line
    with the ledger's directory. ``run()`` until cancelled."""

    def __init__(
        self,
        service: LedgerService,
        *,
        locate: Locate | None = None,
        admission: Admission | None = None,
        period: float = DEFAULT_PERIOD,
        margin: int = DEFAULT_PROMOTE_MARGIN,
        step_timeout: float = 10.0,
        api_urls: Mapping[str, str] | None = None,
    ) -> None:
        self.service = service
        self.api_urls = dict(api_urls or {})
        """API URLs of the network file's nodes (governance records the others')."""
        self.locate = locate
        self.admission = admission
        self.period = period
        self.margin = margin
        self.step_timeout = step_timeout
        self.stats = MembershipStats()
        self._wake = asyncio.Event()
        self._remove_listener = service.add_listener(self._on_apply)

    def close(self) -> None:
        self._remove_listener()

    def _on_apply(self, result: ApplyResult) -> None:
        if NODES_TABLE in result.tables:
            self._wake.set()

    def nodes(self) -> dict[int, KnownNode]:
        return known_nodes(self.service, self.locate)

    def sync_links(self, nodes: Mapping[int, KnownNode]) -> None:
        """Links and admission for every trusted node, and for nodes still configured."""
        service = self.service
        transport = service.member.transport
        conf = service.driver.node.conf_state
        configured = conf.voters | conf.learners
        allowed: set[str] = set()
        revoked: set[str] = set()
        for nid, node in nodes.items():
            if nid == service.node_id:
                continue
            keep = node.status is NodeStatus.TRUSTED or nid in configured
            if keep and node.location is not None:
                transport.add_peer(nid, node.location)
                allowed.add(node.designator)
            elif not keep:
                transport.remove_peer(nid)
                revoked.add(node.designator)
        if self.admission is not None:
            self.admission.update(allowed, revoked)

    def next_step(self, nodes: Mapping[int, KnownNode]) -> ConfStep | None:
        node = self.service.driver.node
        if node.role is not Role.LEADER:
            return None
        conf = node.conf_state
        matches: dict[int, int] = {}
        for nid in conf.voters | conf.learners:
            pr = node.progress(nid)
            if pr is not None:
                matches[nid] = pr.match
        return plan(
            leader=node.node_id,
            conf=conf,
            nodes=nodes,
            matches=matches,
            commit=node.commit_index,
            margin=self.margin,
        )

    async def apply_step(self, step: ConfStep) -> bool:
        """Carry out ``step``; False if the core refused or it did not finish in time."""
        driver = self.service.driver
        try:
            async with asyncio.timeout(self.step_timeout):
                if step.kind is StepKind.TRANSFER:
                    driver.transfer_leadership(step.node_id)
                    node = driver.node
                    await driver.wait_for(lambda: node.role is not Role.LEADER)
                else:
                    kind = {
                        StepKind.ADD_LEARNER: ConfChangeKind.ADD_LEARNER,
                        StepKind.PROMOTE: ConfChangeKind.PROMOTE,
                        StepKind.REMOVE: ConfChangeKind.REMOVE,
                    }[step.kind]
                    await driver.propose_conf_change(ConfChange(kind, step.node_id))
        except (ConsensusError, TimeoutError) as exc:
            self.stats.refused += 1
            log.info(
                "membership step not taken",
                extra={
                    "event": "membership.step_refused",
                    "step": step.kind.value,
                    "raft_id": step.node_id,
                    "error": str(exc),
                },
            )
            return False
        self.stats.steps[step.kind.value] = self.stats.steps.get(step.kind.value, 0) + 1
        self.stats.last_step = f"{step.kind.value} {step.node_id}"
        log.info(
            "membership step taken",
            extra={
                "event": "membership.step",
                "step": step.kind.value,
                "raft_id": step.node_id,
                "reason": step.reason,
            },
        )
        return True

    async def run_once(self) -> ConfStep | None:
        """One look: sync links; on the leader, take the next step (if any)."""
        nodes = self.nodes()
        self.sync_links(nodes)
        step = self.next_step(nodes)
        if step is not None:
            ok = await self.apply_step(step)
            self.sync_links(self.nodes())
            return step if ok else None
        return None

    async def run(self) -> None:
        """Look whenever the directory changes; besides, every ``period`` on the leader
        (learners' progress) and every ``IDLE_LOOKS`` periods elsewhere."""
        idle = 0
        woken = True
        while True:
            leading = self.service.driver.node.role is Role.LEADER
            if woken or leading or idle >= IDLE_LOOKS:
                idle = 0
                self._wake.clear()
                if await self.run_once() is not None:
                    continue  # one change is applied: look again at once
            idle += 1
            woken = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.period):
                    await self._wake.wait()
                    woken = True

    def describe(self) -> dict[str, Any]:
        """The membership as this node sees it (for the REST API and the join display)."""
        service = self.service
        node = service.driver.node
        conf = node.conf_state
        me = service.node_id
        if me in conf.voters:
            role = "leader" if node.role is Role.LEADER else "voter"
        elif me in conf.learners:
            role = "learner"
        else:
            role = "none"
        nodes = self.nodes()
        rows: list[dict[str, Any]] = []
        for nid, kn in sorted(nodes.items(), key=lambda item: item[1].name):
            pr = node.progress(nid) if node.role is Role.LEADER else None
            rows.append(
                {
                    "name": kn.name,
                    "raft_id": nid,
                    "status": kn.status.value,
                    "genesis": kn.genesis,
                    "raft": "voter"
                    if nid in conf.voters
                    else "learner"
                    if nid in conf.learners
                    else None,
                    "match": None if pr is None else pr.match,
                    "snapshot": _snapshot_progress(pr),
                    "identity": kn.designator,
                    "location": None if kn.location is None else kn.location.hints_dict(),
                    "api_url": kn.api_url or self.api_urls.get(kn.name),
                }
            )
        return {
            "raft_id": me,
            "name": service.name,
            "membership": role,
            "role": node.role.name.lower(),
            "term": node.term,
            "leader": node.leader_id,
            "commit_index": node.commit_index,
            "applied_index": service.driver.applied_index,
            "voters": sorted(conf.voters),
            "learners": sorted(conf.learners),
            "nodes": rows,
            "steps": dict(self.stats.steps),
        }


def _snapshot_progress(pr: Progress | None) -> dict[str, int] | None:
    """Bytes of the snapshot the leader is sending a follower, acknowledged so far."""
    if pr is None or pr.state is not ProgressState.SNAPSHOT or pr.snap is None:
        return None
    return {"index": pr.snap.metadata.index, "acked": pr.snap_acked, "size": len(pr.snap.data)}


# -- the component ---------------------------------------------------------------------


class MembershipComponent:
    """Runs the watcher and serves the join API (``/api/v1/gov/join``, membership)."""

    name = COMPONENT_NAME

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        settings: Mapping[str, Any] = ctx.settings.get(COMPONENT_NAME, {})
        admission = settings.get("admission")
        self.admission: Admission | None = admission if isinstance(admission, Admission) else None
        self.period = float(settings.get("period", DEFAULT_PERIOD))
        self.margin = int(settings.get("margin", DEFAULT_PROMOTE_MARGIN))
        self.watcher: MembershipWatcher | None = None
        self.service: LedgerService | None = None
        self._relayed: dict[str, str] = {}
        """Join requests relayed by this node: node name -> tx id (to report refusals)."""

    def handlers(self) -> Mapping[str, CommandHandler]:
        return {}

    def bind(self, service: LedgerService) -> None:
        from charter.node.join import governance_locator

        self.service = service
        self._adopt_join_record(service)
        self.watcher = MembershipWatcher(
            service,
            locate=governance_locator(service),
            admission=self.admission,
            period=self.period,
            margin=self.margin,
            api_urls={}
            if self.ctx.network is None
            else {n.name: n.api_url for n in self.ctx.network.nodes},
        )

    def _adopt_join_record(self, service: LedgerService) -> None:
        """A joined node starts knowing the peers it was told of when it was trusted."""
        from charter.node.join import JoinRecord
        from charter.node.network import identity_from_designator

        if self.ctx.data_dir is None:
            return
        record = JoinRecord.load(self.ctx.data_dir)
        if record is None:
            return
        transport = service.member.transport
        for peer in record.peers:
            key = identity_from_designator(peer.identity)
            nid = raft_id_for_key(key)
            if nid == service.node_id:
                continue
            transport.add_peer(nid, tls_location(key, peer.host, peer.port))
        if self.admission is not None:
            self.admission.pin(p.identity for p in record.peers)

    def routers(self) -> Sequence[APIRouter]:
        from charter.api.join import join_router

        return [join_router(self)]

    async def run(self) -> None:
        if self.watcher is not None:
            await self.watcher.run()

    async def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()


def membership_component(ctx: NodeContext) -> MembershipComponent:
    return MembershipComponent(ctx)
