"""The demo's join act: the new member's node joins the running network and votes.

``join_act(stack_path, api_urls, console, new_member=...)`` runs after the governance act
(``demo_gov``) voted ``new_member`` in and wrote its words file in the stack. It creates
the member's node (keys derived from its 24 words, attested by its root key), sends the
signed join request, shows the node Pending, has the members pass a ``trust_node``
proposal (the first member proposes, two more vote for), then starts the node process and
shows its catch-up until it is a voter. The node keeps running (``charter stack down``
stops it with the others). Every wait is bounded; any failure raises ``DemoError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.markup import escape

from charter.cli.demo_net import DemoError
from charter.cli.node import JoinPlan, join_network
from charter.cli.stack import NETWORK_FILE, PORT_STRIDE, WORDS_FILE, node_name_for
from charter.crypto.keyfile import load_ed25519_private_key
from charter.errors import CharterError
from charter.governance import actions as acts
from charter.governance.client import GovClient
from charter.node.join import NodePlan, read_words

ACT_TIMEOUT = 120.0
TRUST_WAIT = 60.0
POLL = 0.1

__all__ = ["join_act", "join_act_async"]


def _next_api_port(api_urls: Mapping[str, str]) -> int:
    ports = [urlsplit(u).port or 0 for u in api_urls.values()]
    return max(ports) + PORT_STRIDE


async def _trust(
    api_urls: Mapping[str, str], stack_path: Path, node: str, console: Console
) -> None:
    """Wait for the request to be pending, then pass ``trust_node`` by majority."""
    members = list(api_urls)
    first = api_urls[members[0]]
    async with httpx.AsyncClient(timeout=30.0) as http:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TRUST_WAIT
        while True:
            r = await http.get(f"{first}/api/v1/gov/join/{node}")
            if r.status_code == 200 and r.json().get("status") == "pending":
                break
            if loop.time() >= deadline:
                raise DemoError(f"{node}'s join request was not pending within {TRUST_WAIT:g} s")
            await asyncio.sleep(POLL)
        action = acts.from_json({"kind": "trust_node", "name": node})
        state = "open"
        pid = ""
        for i, m in enumerate(members):
            key = load_ed25519_private_key(stack_path / m / "member.pem")
            async with httpx.AsyncClient(base_url=api_urls[m], timeout=30.0) as h:
                client = GovClient(h)
                if i == 0:
                    answer = await client.propose(m, key, [action], f"trust {node}")
                    pid = answer["proposal"]["id"]
                    console.print(f"ok {escape(m)} proposed trusting {escape(node)}: {pid}")
                else:
                    answer = await client.vote(m, key, pid, True)
                    console.print(f"ok {escape(m)} voted for {pid}")
            state = answer["proposal"]["state"]
            if state == "accepted":
                console.print(f"ok proposal {pid} accepted: {escape(node)} is trusted")
                return
        raise DemoError(f"proposal {pid} is {state} after every member voted for")


async def join_act_async(
    stack_path: Path,
    api_urls: Mapping[str, str],
    console: Console,
    *,
    new_member: str = "umbrella-labs",
) -> Path:
    """``api_urls``: genesis member name -> its node's API URL. Returns the new node's
    config path."""
    words_file = stack_path / new_member / WORDS_FILE
    if not words_file.is_file():
        raise DemoError(f"{new_member} has no words file in the stack (run the governance act)")
    name = node_name_for(new_member)
    port = _next_api_port(api_urls)
    plan = JoinPlan(
        None,
        stack_path / NETWORK_FILE,
        read_words(words_file),
        NodePlan(stack_path / new_member / name, name, new_member, "127.0.0.1", port, port + 1,
                 port + 2),
    )  # fmt: skip
    try:
        async with asyncio.timeout(ACT_TIMEOUT):
            return await _join_and_trust(plan, api_urls, stack_path, name, console)
    except TimeoutError:
        raise DemoError(f"the join act did not finish within {ACT_TIMEOUT:g} s") from None


async def _join_and_trust(
    plan: JoinPlan, api_urls: Mapping[str, str], stack_path: Path, name: str, console: Console
) -> Path:
    try:
        async with asyncio.TaskGroup() as tg:
            joining = tg.create_task(
                join_network(plan, console, trust_within=TRUST_WAIT, start_within=ACT_TIMEOUT)
            )
            tg.create_task(_trust(api_urls, stack_path, name, console))
    except* CharterError as group:
        exc = group.exceptions[0]
        assert isinstance(exc, CharterError)
        if isinstance(exc, DemoError):
            raise exc from None
        raise DemoError(f"join: [{exc.code}] {exc.message}") from None
    return joining.result()


def join_act(
    stack_path: Path,
    api_urls: Mapping[str, str],
    console: Console,
    *,
    new_member: str = "umbrella-labs",
) -> Path:
    """The synchronous form, for the demo's steps."""
    return asyncio.run(join_act_async(stack_path, api_urls, console, new_member=new_member))
