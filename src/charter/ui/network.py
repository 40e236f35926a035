"""The network as one node sees it: every node's role, indexes, lag, links and readiness.

The answering node describes itself from its own ledger service and asks every other
node it has an API address for (governance's node records) for ``/api/v1/status`` and
``/readyz``, concurrently and with a short timeout. The browser thus draws the whole
network from one origin, and a node that does not answer is drawn as unreachable with
the reason while the others are still shown. What peers answer is copied field by
field with its type checked, never passed through.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from charter.api.info import NodeInfo
from charter.consensus.types import ConfState, Role
from charter.governance import state
from charter.node.ledger_service import LedgerService
from charter.node.membership import KnownNode, known_nodes
from charter.ops.metrics import NodeMetrics
from charter.ops.probe import peer_ids

__all__ = ["CACHE_SECONDS", "PEER_TIMEOUT", "ClientFactory", "NetworkView"]

PEER_TIMEOUT: Final = 1.0
"""Seconds a peer has to answer before it is drawn as unreachable."""
CACHE_SECONDS: Final = 0.5
"""Answers younger than this are reused, so several open pages cost one round of calls."""

_INT_FIELDS: Final = (
    "term",
    "commit_index",
    "applied_index",
    "last_seqno",
    "signed_upto",
    "divergence_alarms",
)
_ROLES: Final = frozenset({"leader", "follower", "candidate", "learner"})

ClientFactory = Callable[[], httpx.AsyncClient]


@dataclass
class _Row:
    raft_id: int
    name: str
    member: str | None
    api_url: str | None
    status: str | None
    raft: str | None
    is_self: bool = False
    reachable: bool | None = None
    error: str | None = None
    node: dict[str, Any] = field(default_factory=dict)
    ready: bool | None = None
    reasons: list[str] = field(default_factory=list)
    peers: list[int] = field(default_factory=list)
    connected: list[int] = field(default_factory=list)
    lag: int | None = None
    match: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "member": self.member,
            "raft_id": self.raft_id,
            "api_url": self.api_url,
            "status": self.status,
            "raft": self.raft,
            "self": self.is_self,
            "reachable": self.reachable,
            "error": self.error,
            "role": self.node.get("role"),
            "leader": self.node.get("leader"),
            "halted": self.node.get("halted"),
            **{k: self.node.get(k) for k in _INT_FIELDS},
            "ready": self.ready,
            "reasons": self.reasons,
            "peers": self.peers,
            "connected_peers": self.connected,
            "lag": self.lag,
            "match": self.match,
        }


class NetworkView:
    """Builds the explorer's network document; ``describe`` is what the route answers."""

    def __init__(
        self,
        service: LedgerService,
        info: NodeInfo,
        metrics: NodeMetrics,
        *,
        client_factory: ClientFactory | None = None,
        timeout: float = PEER_TIMEOUT,
    ) -> None:
        self.service = service
        self.info = info
        self.metrics = metrics
        self.timeout = timeout
        # built once: a default client loads the CA store each time it is created
        self._tls = ssl.create_default_context()
        self._client_factory = client_factory or self._default_client
        self._lock = asyncio.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    def _default_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.timeout, verify=self._tls, trust_env=False, follow_redirects=False
        )

    async def describe(self) -> dict[str, Any]:
        async with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
                return cached[1]
            doc = await self._gather()
            self._cached = (time.monotonic(), doc)
            return doc

    async def _gather(self) -> dict[str, Any]:
        service = self.service
        rows = self._rows()
        me = rows[service.node_id]
        self._describe_self(me)
        others = [r for r in rows.values() if not r.is_self]
        if others:
            async with self._client_factory() as client, asyncio.TaskGroup() as tg:
                for row in others:
                    tg.create_task(self._ask(client, row))
        leader = _leader(rows.values())
        self._lags(rows, leader)
        node = service.driver.node
        conf = node.conf_state
        return {
            "observer": self.info.name,
            "observer_raft_id": service.node_id,
            "leader": leader.raft_id if leader is not None else None,
            "term": max((int(r.node.get("term") or 0) for r in rows.values()), default=0),
            "voters": sorted(conf.voters),
            "learners": sorted(conf.learners),
            "nodes": [r.to_json() for r in sorted(rows.values(), key=lambda r: r.name)],
            "links": _links(rows),
            "generated_us": time.time_ns() // 1000,
        }

    def _rows(self) -> dict[int, _Row]:
        service = self.service
        engine = service.engine

        conf = service.driver.node.conf_state
        directory = engine.directory()
        known: dict[int, KnownNode] = known_nodes(service)
        rows: dict[int, _Row] = {}
        for nid, kn in known.items():
            record = state.node_info(engine, kn.name)  # governance's record: the API address
            entry = directory.get(kn.name)
            member = entry.member if entry is not None else None
            if member is None and record is not None:
                member = record.member
            if member is None and nid in service.network.members:
                member = service.network.members[nid].member or None
            rows[nid] = _Row(
                raft_id=nid,
                name=kn.name,
                member=member,
                api_url=(record.api_url if record is not None else "") or kn.api_url or None,
                status=record.status.value if record is not None else kn.status.value,
                raft=_raft_part(nid, conf),
            )
        for nid in sorted((conf.voters | conf.learners) - set(rows)):
            rows[nid] = _Row(nid, f"raft-{nid}", None, None, None, _raft_part(nid, conf))
        if service.node_id not in rows:
            me = _Row(service.node_id, self.info.name, self.info.member, None, None, None)
            me.raft = _raft_part(service.node_id, conf)
            rows[service.node_id] = me
        me = rows[service.node_id]
        me.is_self = True
        me.api_url = self.info.api_url or me.api_url
        me.member = me.member or self.info.member
        return rows

    def _describe_self(self, row: _Row) -> None:
        service = self.service
        s = service.summary()
        row.reachable = True
        row.node = {
            "role": _role(s.role, row.raft),
            "leader": s.leader,
            "halted": s.halted,
            "term": s.term,
            "commit_index": s.commit_index,
            "applied_index": s.applied_index,
            "last_seqno": s.last_seqno,
            "signed_upto": s.signed_upto,
            "divergence_alarms": s.alarms,
        }
        readiness = self.metrics.readiness()
        row.ready = readiness.ready
        row.reasons = list(readiness.reasons)
        transport = service.member.transport
        row.peers = peer_ids(service)
        row.connected = [p for p in row.peers if transport.connected(p)]

    async def _ask(self, client: httpx.AsyncClient, row: _Row) -> None:
        if row.api_url is None:
            row.reachable = None
            row.error = "no API address is known for this node"
            return
        if row.status == "retired":
            row.reachable = None
            row.error = "retired"
            return
        base = row.api_url.rstrip("/")
        try:
            async with asyncio.timeout(self.timeout):
                status = await client.get(f"{base}/api/v1/status")
                ready = await client.get(f"{base}/readyz")
        except TimeoutError:
            row.reachable, row.error = False, f"no answer within {self.timeout:g} s"
            return
        except httpx.HTTPError as exc:
            row.reachable, row.error = False, _short(exc)
            return
        if status.status_code != 200:
            row.reachable, row.error = False, f"status answered HTTP {status.status_code}"
            return
        try:
            doc = status.json()
        except ValueError:
            row.reachable, row.error = False, "status answered something other than JSON"
            return
        if not isinstance(doc, dict):
            row.reachable, row.error = False, "status answered an unexpected document"
            return
        row.reachable = True
        row.node = _pick_status(doc, row.raft)
        row.peers = _int_list(doc.get("peers"))
        row.connected = _int_list(doc.get("connected_peers"))
        row.ready, row.reasons = _readiness(ready)

    def _lags(self, rows: dict[int, _Row], leader: _Row | None) -> None:
        node = self.service.driver.node
        if node.role is Role.LEADER:
            last = node.last_index
            for nid, row in rows.items():
                if nid == self.service.node_id:
                    row.lag, row.match = 0, last
                    continue
                progress = node.progress(nid)
                if progress is not None:
                    row.match = progress.match
                    row.lag = max(0, last - progress.match)
        if leader is None:
            return
        top = leader.node.get("commit_index")
        for row in rows.values():
            if row.lag is not None or not row.reachable:
                continue
            applied = row.node.get("applied_index")
            if isinstance(top, int) and isinstance(applied, int):
                row.lag = max(0, top - applied)


def _raft_part(nid: int, conf: ConfState) -> str | None:
    if nid in conf.voters:
        return "voter"
    if nid in conf.learners:
        return "learner"
    return None


def _role(role: str, raft: str | None) -> str:
    """``/api/v1/status`` shows a learner as a follower; the configuration knows better."""
    return "learner" if raft == "learner" and role == "follower" else role


def _leader(rows: Iterable[_Row]) -> _Row | None:
    leaders = [r for r in rows if r.reachable and r.node.get("role") == "leader"]
    if not leaders:
        return None
    return max(leaders, key=lambda r: int(r.node.get("term") or 0))


def _links(rows: dict[int, _Row]) -> list[dict[str, Any]]:
    """One link per pair of nodes either of which reports the other connected."""
    seen: dict[tuple[int, int], set[int]] = {}
    for row in rows.values():
        if not row.reachable:
            continue
        for peer in row.connected:
            if peer == row.raft_id:
                continue
            pair = (min(row.raft_id, peer), max(row.raft_id, peer))
            seen.setdefault(pair, set()).add(row.raft_id)
    return [
        {"a": a, "b": b, "both": len(ends) == 2, "seen_by": sorted(ends)}
        for (a, b), ends in sorted(seen.items())
    ]


def _pick_status(doc: dict[str, Any], raft: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _INT_FIELDS:
        value = doc.get(key)
        out[key] = value if type(value) is int else None
    role = doc.get("role")
    out["role"] = _role(role, raft) if isinstance(role, str) and role in _ROLES else None
    leader = doc.get("leader")
    out["leader"] = leader if type(leader) is int else None
    halted = doc.get("halted")
    out["halted"] = halted if type(halted) is bool else None
    return out


def _int_list(value: object) -> list[int]:
    if not isinstance(value, list):
        return []
    return [v for v in value[:1024] if type(v) is int]


def _readiness(response: httpx.Response) -> tuple[bool | None, list[str]]:
    try:
        doc = response.json()
    except ValueError:
        return None, []
    reasons = doc.get("reasons") if isinstance(doc, dict) else None
    texts = (
        [r[:200] for r in reasons[:20] if isinstance(r, str)] if isinstance(reasons, list) else []
    )
    if response.status_code == 200:
        return True, texts
    if response.status_code == 503:
        return False, texts
    return None, texts


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
