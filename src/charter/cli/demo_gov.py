"""The demo's governance act: the members vote a fourth member in.

``gov_act(stack_path, api_urls, console)`` runs against a running stack: the first
member proposes adding a new member whose 24-word root identity is made here
(``charter.identity.root``), a second member votes for, and the proposal is accepted
(majority, two of three) and applied on every node. The new member's key files are
written beside the others in the stack (``<stack>/<name>/member.words``,
``member.pem``, ``member.pub.pem``) so the join act can start its node. Every wait is
bounded; any failure raises ``DemoError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape

from charter.cli.demo_net import DemoError
from charter.crypto.keyfile import (
    load_ed25519_private_key,
    write_bytes_secure,
    write_private_key,
    write_public_key,
)
from charter.errors import CharterError
from charter.governance import actions as acts
from charter.governance.client import GovClient
from charter.identity.root import RootIdentity

ACT_TIMEOUT = 30.0
POLL = 0.05
POLLS = 200
WORDS_HEADER = (
    "# CHARTER LOCAL DEVELOPMENT SECRET - do not use for anything of value.\n"
    "# The 24 words below are the root identity of member {member}.\n"
)


@dataclass(frozen=True)
class NewMember:
    name: str
    identity: RootIdentity = field(repr=False)
    proposal_id: str
    directory: Path


def _write_member_files(directory: Path, name: str, identity: RootIdentity, words: str) -> None:
    directory.mkdir(mode=0o700, exist_ok=True)
    write_bytes_secure(
        directory / "member.words", (WORDS_HEADER.format(member=name) + words + "\n").encode()
    )
    write_private_key(directory / "member.pem", identity.root_key())
    write_public_key(directory / "member.pub.pem", identity.root_key().public_key)


async def gov_act_async(
    stack_path: Path,
    api_urls: Mapping[str, str],
    console: Console,
    *,
    new_member: str = "umbrella-labs",
) -> NewMember:
    """``api_urls``: member name -> its node's API URL (at least two members)."""
    members = list(api_urls)
    if len(members) < 2:
        raise DemoError("the governance act needs two members' nodes")
    proposer, voter = members[0], members[1]
    identity, words = RootIdentity.generate()
    directory = stack_path / new_member
    _write_member_files(directory, new_member, identity, words)
    console.print(
        f"  {escape(new_member)}: a new 24-word identity, member key "
        f"{identity.root_key().public_key.hex()[:16]}..."
    )
    action = acts.from_json(
        {
            "kind": "add_member",
            "name": new_member,
            "public_key": identity.root_key().public_key.hex(),
            "roles": ["member"],
            "data": {"joined_by": "demo"},
        }
    )
    keys = {m: load_ed25519_private_key(stack_path / m / "member.pem") for m in (proposer, voter)}
    try:
        async with (
            asyncio.timeout(ACT_TIMEOUT),
            httpx.AsyncClient(base_url=api_urls[proposer], timeout=ACT_TIMEOUT) as h1,
            httpx.AsyncClient(base_url=api_urls[voter], timeout=ACT_TIMEOUT) as h2,
        ):
            c1, c2 = GovClient(h1), GovClient(h2)
            answer = await c1.propose(proposer, keys[proposer], [action], f"admit {new_member}")
            pid = answer["proposal"]["id"]
            console.print(
                f"ok {escape(proposer)} proposed adding {escape(new_member)}: proposal {pid} "
                f"{answer['proposal']['state']} (1 of {len(members)} for)"
            )
            voted = await c2.vote(voter, keys[voter], pid, True)
            state = voted["proposal"]["state"]
            if state != "accepted":
                raise DemoError(f"proposal {pid} is {state} after two of three voted for")
            console.print(f"ok {escape(voter)} voted for: proposal {pid} accepted (2 of 3)")
            for m, url in api_urls.items():
                async with httpx.AsyncClient(base_url=url, timeout=ACT_TIMEOUT) as h:
                    client = GovClient(h)
                    for _ in range(POLLS):  # a remote node: poll, bounded
                        if any(x["name"] == new_member for x in await client.members()):
                            break
                        await asyncio.sleep(POLL)
                    else:
                        raise DemoError(f"{m}'s node does not list {new_member}")
                console.print(f"ok {escape(m)}'s node lists {escape(new_member)} as a member")
    except TimeoutError:
        raise DemoError(f"the governance act did not finish within {ACT_TIMEOUT:g} s") from None
    except CharterError as exc:
        raise DemoError(f"governance: [{exc.code}] {exc.message}") from None
    return NewMember(new_member, identity, pid, directory)


def gov_act(
    stack_path: Path,
    api_urls: Mapping[str, str],
    console: Console,
    *,
    new_member: str = "umbrella-labs",
) -> NewMember:
    """The synchronous form, for the demo's steps."""
    return asyncio.run(gov_act_async(stack_path, api_urls, console, new_member=new_member))


__all__ = ["NewMember", "gov_act", "gov_act_async"]
