"""Fixtures for multi-process OCapN tests: test peers in their own processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

# The raw CapTP client lives next to the tests (importlib import mode adds no paths).
sys.path.insert(0, os.path.dirname(__file__))

from charter.ocapn.locator import PeerLocation


@dataclass
class PeerProcess:
    process: asyncio.subprocess.Process
    uri: str

    @property
    def location(self) -> PeerLocation:
        return PeerLocation.from_uri(self.uri)

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signum)
        async with asyncio.timeout(10):
            return await self.process.wait()


SpawnPeer = Callable[..., Awaitable[PeerProcess]]


async def spawn_peer(*args: str, cli: bool = False) -> PeerProcess:
    """Start a test peer (``python -m charter.ocapn.testpeer`` or the CLI); wait for its URI."""
    if cli:
        cmd = [
            sys.executable,
            "-c",
            "from charter.cli.main import main; main()",
            "ocapn",
            "test-peer",
        ]
    else:
        cmd = [sys.executable, "-m", "charter.ocapn.testpeer"]
    process = await asyncio.create_subprocess_exec(
        *cmd, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            line = await process.stdout.readline()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if not line:
        assert process.stderr is not None
        err = await process.stderr.read()
        await process.wait()
        raise RuntimeError(f"test peer exited: {err.decode(errors='replace')}")
    return PeerProcess(process, line.decode().strip())


@pytest.fixture
async def peers() -> AsyncIterator[SpawnPeer]:
    """Spawn test peers; every one is stopped (SIGTERM) and must exit cleanly."""
    started: list[PeerProcess] = []

    async def spawn(*args: str, cli: bool = False) -> PeerProcess:
        peer = await spawn_peer(*args, cli=cli)
        started.append(peer)
        return peer

    yield spawn
    codes = []
    for peer in started:
        try:
            codes.append(await peer.stop())
        except TimeoutError:
            peer.process.kill()
            await peer.process.wait()
            codes.append(-1)
    assert codes == [0] * len(started), f"test peers exited with {codes}"
