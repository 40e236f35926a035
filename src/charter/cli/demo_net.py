"""What the demo needs of a running stack: free ports, bounded waits, REST calls.

Small synchronous helpers: the demo is a script that does one thing at a time, and
each call here is bounded by an HTTP timeout or an explicit deadline.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx

from charter.cli.stack import LOCAL_HOST, PORT_STRIDE, StackNode, port_layout
from charter.errors import CharterError

T = TypeVar("T")

POLL: Final = 0.05
HTTP_TIMEOUT: Final = 5.0
WRITE_TIMEOUT: Final = 15.0
FIRST_BASE_PORT: Final = 20000
EPHEMERAL_RANGE_FILE: Final = "/proc/sys/net/ipv4/ip_local_port_range"


class DemoError(CharterError):
    """A demo step did not see what it set out to show."""

    code = "demo.step"


def busy_port(base_port: int, members: int) -> int | None:
    """The first port of the stack's layout that cannot be bound now, if any."""
    for ports in port_layout(base_port, members):
        for port in ports:
            with socket.socket() as s:
                try:
                    s.bind((LOCAL_HOST, port))
                except OSError:
                    return port
    return None


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux; else IANA's)."""
    try:
        low, high = Path(EPHEMERAL_RANGE_FILE).read_text(encoding="ascii").split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def free_base_port(members: int, attempts: int = 200) -> int:
    """A base port (a multiple of 10 from 20000) whose whole layout is free now.

    The range avoids the ephemeral ports: an outgoing connection (our own polling of
    the nodes) could otherwise take a node's port between this check and its bind.
    """
    low, high = _ephemeral_range()
    span = PORT_STRIDE * members
    candidates = [
        base
        for base in range(FIRST_BASE_PORT, 65536 - span, PORT_STRIDE)
        if base + span <= low or base > high
    ]
    rng = random.Random()
    for base in rng.sample(candidates, min(attempts, len(candidates))):
        if busy_port(base, members) is None:
            return base
    raise DemoError(f"no free range of ports found in {attempts} attempts")


def until(predicate: Callable[[], T | None], within: float, what: str) -> T:
    """Poll ``predicate`` until it returns something other than None or False."""
    deadline = time.monotonic() + within
    last: Exception | None = None
    while True:
        try:
            value = predicate()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last, value = exc, None
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            why = f" (last error: {last})" if last is not None else ""
            raise DemoError(f"{what}: not within {within:g} s{why}")
        time.sleep(POLL)


class StackClient:
    """The REST API of every node of one stack."""

    def __init__(self, nodes: list[StackNode], client: httpx.Client) -> None:
        self.nodes = nodes
        self.client = client
        self._by_raft = {n.entry.raft_id: n for n in nodes}

    def node(self, name: str) -> StackNode:
        return next(n for n in self.nodes if n.entry.name == name)

    def by_raft_id(self, raft_id: object) -> StackNode | None:
        return self._by_raft.get(raft_id) if isinstance(raft_id, int) else None

    def status(self, node: StackNode) -> dict[str, Any]:
        r = self.client.get(f"{node.entry.api_url}/api/v1/status", timeout=HTTP_TIMEOUT)
        r.raise_for_status()
        doc = r.json()
        if not isinstance(doc, dict):
            raise ValueError("status is not a JSON object")
        return doc

    def agreed_leader(self, among: list[StackNode]) -> StackNode | None:
        """The node every one of ``among`` names as leader and that says it leads."""
        named = {self.status(n).get("leader") for n in among}
        if len(named) != 1:
            return None
        leader = self.by_raft_id(next(iter(named)))
        if leader is None or leader not in among:
            return None
        return leader if self.status(leader).get("role") == "leader" else None

    def put(self, node: StackNode, table: str, key: str, value: Any) -> dict[str, Any]:
        """A write through ``node``'s own API, answered once committed."""
        try:
            r = self.client.put(
                f"{node.entry.api_url}/api/v1/tables/{table}/{key}",
                params={"wait": "committed"},
                json=value,
                timeout=WRITE_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise DemoError(f"write through {node.entry.name} failed: {exc}") from None
        if r.status_code != 200:
            raise DemoError(f"write to {node.entry.name} answered {r.status_code}: {r.text}")
        doc = r.json()
        if not isinstance(doc, dict) or doc.get("status") != "Committed":
            raise DemoError(f"write to {node.entry.name} was not committed: {doc}")
        return doc

    def get(self, node: StackNode, table: str, key: str, consistency: str = "committed") -> Any:
        """The stored value, or None when the node has none (404)."""
        r = self.client.get(
            f"{node.entry.api_url}/api/v1/tables/{table}/{key}",
            params={"consistency": consistency},
            timeout=HTTP_TIMEOUT,
        )
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def receipt(self, node: StackNode, tx_id: str, suffix: str) -> bytes | None:
        """``receipt`` (JSON) or ``receipt.cose`` of a transaction; None until available."""
        r = self.client.get(
            f"{node.entry.api_url}/api/v1/tx/{tx_id}/{suffix}", timeout=HTTP_TIMEOUT
        )
        return r.content if r.status_code == 200 else None
