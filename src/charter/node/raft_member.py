"""One consensus member of a node: its Raft driver wired to its OCapN runtime.

The runtime is the node's (shared with every other service); the member adds the raft
gate to it and runs the transport's links beside the driver. ``run()`` until cancelled.
"""

from __future__ import annotations

import asyncio
import random

from charter.consensus.driver import ApplyFn, RaftDriver, RestoreFn
from charter.consensus.raft import Config
from charter.consensus.storage import RaftStorage
from charter.node.raft_transport import Backoff, RaftNetworkConfig, RaftTransport
from charter.ocapn.runtime import Runtime

__all__ = ["RaftMember"]


class RaftMember:
    """A RaftDriver whose messages travel to the peers' raft gates over ``runtime``."""

    def __init__(
        self,
        runtime: Runtime,
        network: RaftNetworkConfig,
        node_id: int,
        storage: RaftStorage,
        apply: ApplyFn,
        *,
        rng: random.Random,
        restore: RestoreFn | None = None,
        tick_interval: float = 0.01,
        election_ticks: int = 10,
        heartbeat_ticks: int = 1,
        backoff: Backoff | None = None,
    ) -> None:
        self.transport = RaftTransport(runtime, network, node_id, rng=rng, backoff=backoff)
        self.config = Config(
            node_id, election_ticks=election_ticks, heartbeat_ticks=heartbeat_ticks, rng=rng
        )
        self.driver = RaftDriver(
            self.config,
            storage,
            self.transport,
            apply,
            restore=restore,
            tick_interval=tick_interval,
        )

    @property
    def node_id(self) -> int:
        return self.driver.node_id

    async def run(self) -> None:
        """Drive the member until cancelled (or until the driver is stopped)."""
        async with asyncio.TaskGroup() as tg:
            links = tg.create_task(self.transport.run())
            await self.driver.run()
            links.cancel()
