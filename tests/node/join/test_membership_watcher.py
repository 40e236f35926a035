"""The membership watcher in a running in-process network: the Raft configuration
follows the directory (a retired follower leaves; a retired leader hands over first)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from charter.codec.syrup import decode, encode
from charter.consensus.types import Role
from charter.ledger.engine import CommandContext, CommandHandler, TxStatus, Write
from charter.ledger.engine.commands import Command
from charter.ledger.engine.nodes import NODES_TABLE, DirectoryEntry, NodeStatus
from charter.ledger.trust import NodeCert
from charter.node.components import NodeContext
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.membership import COMPONENT_NAME, MembershipComponent, membership_component

WITHIN = 20.0


class _DirectoryHandler:
    """Stands in for governance: writes one directory entry as told."""

    tables: Sequence[str] = (NODES_TABLE,)

    def execute(self, ctx: CommandContext, body: bytes) -> Sequence[Write]:
        name, entry = decode(body)
        assert isinstance(name, str) and isinstance(entry, bytes)
        return [Write(NODES_TABLE, name, entry)]


class _DirectoryComponent(MembershipComponent):
    name = "test-directory"

    def handlers(self) -> Mapping[str, CommandHandler]:
        return {"dir": _DirectoryHandler()}

    def routers(self) -> Sequence[object]:  # type: ignore[override]
        return []

    async def run(self) -> None:
        return None


def _directory(ctx: NodeContext) -> _DirectoryComponent:
    return _DirectoryComponent(ctx)


async def _set_status(net: LocalLedgerNetwork, via: int, nid: int, status: NodeStatus) -> None:
    service = net.service(via)
    m = service.network.members[nid]
    entry = DirectoryEntry(
        m.name, m.member, m.batch_key, NodeCert.from_x509(m.ledger_cert.x509), status
    )
    body = encode([m.name, entry.encode()])
    ticket = await service.submit(Command("dir", body), wait="committed")
    assert ticket.status is TxStatus.COMMITTED, ticket


async def _until(net: LocalLedgerNetwork, nid: int, predicate: Callable[[], bool]) -> None:
    """Wait for ``predicate``, re-checked whenever node ``nid``'s Raft node acts."""
    async with asyncio.timeout(WITHIN):
        await net.service(nid).member.transport.wait_for(predicate)


async def test_retired_nodes_leave_and_a_retired_leader_hands_over_first() -> None:
    async with LocalLedgerNetwork(
        "memory",
        components=[membership_component, _directory],
        component_settings={COMPONENT_NAME: {"period": 0.02}},
    ) as net:
        leader = await net.elect()
        follower, other = (n for n in net.ids if n != leader)

        def conf(nid: int) -> frozenset[int]:
            return net.service(nid).driver.node.conf_state.voters

        await _set_status(net, leader, follower, NodeStatus.RETIRED)
        await _until(net, leader, lambda: conf(leader) == {leader, other})
        await _until(net, other, lambda: conf(other) == {leader, other})
        # the others dropped the retired node's link once it had left
        await _until(
            net, other, lambda: follower not in net.service(other).member.transport.peer_ids()
        )

        await _set_status(net, other, leader, NodeStatus.RETIRED)

        def handed_over() -> bool:
            node = net.service(other).driver.node
            return node.role is Role.LEADER and conf(other) == {other}

        await _until(net, other, handed_over)
        ticket = await net.service(other).submit([("app", "after", b"1")], wait="committed")
        assert ticket.status is TxStatus.COMMITTED
        watcher = next(
            c for c in net.members[other].components if isinstance(c, MembershipComponent)
        ).watcher
        assert watcher is not None and watcher.stats.steps.get("remove") == 1
