"""``charter gov``: propose, vote, withdraw, list, show, constitution, members, nodes, audit.

Requests are signed here, with the member's key, and sent to one node's REST API:

- the key: ``--stack NAME --member NAME`` (the member's root key ``member.pem`` in the
  local stack), or ``--words-file FILE`` (the member's 24 words; the root key ``m/0'``)
  or ``--key-file FILE`` (an Ed25519 PEM key), each with ``--member NAME``;
- the node: ``--api URL``, or ``--stack NAME`` (the member's node, else the first node).

``propose KIND ARG=VALUE ...`` builds one action (``docs/governance.md`` lists the kinds
and their arguments); a VALUE that parses as JSON is used as JSON, a list argument also
takes ``a,b,c``, and ``@FILE`` reads a file (a PEM public key becomes its hex key, any
other file its text). ``--actions-file FILE`` takes a JSON list of actions instead.
Writes wait until committed; a refused one prints its rule and reason and exits 1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from charter.crypto.keyfile import load_ed25519_private_key, public_key_from_pem
from charter.crypto.keys import Ed25519PrivateKey
from charter.errors import CharterError
from charter.governance import actions as acts
from charter.governance.audit import audit as run_audit
from charter.governance.client import GovClient
from charter.governance.genesis import genesis_from_network
from charter.governance.model import Action, Genesis
from charter.identity.root import RootIdentity

app = typer.Typer(
    help="Governance: proposals, ballots, the constitution, audit.", no_args_is_help=True
)
console = Console(highlight=False, soft_wrap=True)
T = TypeVar("T")
HTTP_TIMEOUT = 40.0


class GovUsageError(CharterError):
    code = "cli.gov.usage"


StackOpt = Annotated[str | None, typer.Option("--stack", help="Local stack NAME.")]
MemberOpt = Annotated[str | None, typer.Option("--member", help="The member acting.")]
ApiOpt = Annotated[str | None, typer.Option("--api", help="A node's API base URL.")]
WordsOpt = Annotated[
    Path | None, typer.Option("--words-file", help="The member's 24-word mnemonic file.")
]
KeyOpt = Annotated[Path | None, typer.Option("--key-file", help="The member's Ed25519 PEM key.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON answer.")]


def _api_url(stack: str | None, member: str | None, api: str | None) -> str:
    if api is not None:
        if stack is not None:
            raise GovUsageError("give --api or --stack, not both")
        return api.rstrip("/")
    if stack is None:
        raise GovUsageError("give --api URL or --stack NAME")
    from charter.cli.stack import open_stack

    _, nodes = open_stack(stack)
    for n in nodes:
        if member in (n.entry.member, n.entry.name):
            return n.entry.api_url
    if not nodes:
        raise GovUsageError(f"stack {stack!r} has no node")
    return nodes[0].entry.api_url  # a member without a node of its own here


def read_words(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GovUsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return " ".join(line.strip() for line in text.splitlines() if not line.startswith("#")).strip()


def member_key(
    stack: str | None, member: str | None, words_file: Path | None, key_file: Path | None
) -> tuple[str, Ed25519PrivateKey]:
    """The acting member's name and signing key (its root key)."""
    if member is None:
        raise GovUsageError("--member NAME is required to sign a request")
    if words_file is not None and key_file is not None:
        raise GovUsageError("give --words-file or --key-file, not both")
    if words_file is not None:
        return member, RootIdentity.from_mnemonic(read_words(words_file)).root_key()
    if key_file is not None:
        return member, load_ed25519_private_key(key_file)
    if stack is None:
        raise GovUsageError("give --stack NAME, --words-file FILE or --key-file FILE for the key")
    from charter.cli.stack import stack_dir

    path = stack_dir(stack) / member / "member.pem"
    if not path.is_file():
        raise GovUsageError(f"stack {stack!r} holds no key of member {member!r} ({path})")
    return member, load_ed25519_private_key(path)


def _run(url: str, work: Callable[[GovClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as http:
            return await work(GovClient(http))

    return asyncio.run(main())


# -- actions from the command line ------------------------------------------------------


def _value(kind: str, arg: str, text: str) -> object:
    typ = acts.SCHEMAS[kind][arg][0]
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise GovUsageError(f"{arg}: cannot read {path}: {exc.strerror or exc}") from None
        if typ in ("key", "optkey"):
            try:
                return public_key_from_pem(data).raw.hex()
            except CharterError as exc:
                raise GovUsageError(f"{arg}: {path} is not a public key: {exc.message}") from None
        return data.decode("utf-8", "replace")
    if typ in ("name", "text", "key", "optkey", "measurement", "policy", "cert"):
        return text
    try:
        return json.loads(text)
    except ValueError:
        if typ == "names":
            return [part.strip() for part in text.split(",") if part.strip()]
        if typ == "map":
            pairs = [p.split(":", 1) for p in text.split(",") if p]
            if all(len(p) == 2 for p in pairs):
                return {k.strip(): v.strip() for k, v in pairs}
        raise GovUsageError(f"{arg}: {text!r} is not valid JSON") from None


def action_from_args(kind: str, pairs: list[str]) -> Action:
    if kind not in acts.SCHEMAS:
        raise GovUsageError(f"unknown action kind {kind!r} (one of {', '.join(acts.KINDS)})")
    doc: dict[str, object] = {"kind": kind}
    for pair in pairs:
        arg, eq, text = pair.partition("=")
        if not eq:
            raise GovUsageError(f"expected ARG=VALUE, got {pair!r}")
        if arg not in acts.SCHEMAS[kind]:
            known = ", ".join(acts.SCHEMAS[kind]) or "none"
            raise GovUsageError(f"{kind} takes no argument {arg!r} (arguments: {known})")
        doc[arg] = _value(kind, arg, text)
    return acts.from_json(doc)


def _actions_file(path: Path) -> list[Action]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GovUsageError(f"cannot read actions from {path}: {exc}") from None
    if not isinstance(doc, list):
        raise GovUsageError(f"{path}: expected a JSON list of actions")
    return [acts.from_json(a) for a in doc]


def _summary(p: dict[str, Any]) -> str:
    votes = p.get("ballots", {})
    yes = sum(1 for v in votes.values() if v == "for")
    state = p["state"] + (f" ({p['reason']})" if p.get("reason") else "")
    return f"{state}, {yes} for, {len(votes) - yes} against"


def _print_write(answer: dict[str, Any], what: str, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(answer))
        return
    p = answer.get("proposal")
    tail = f": proposal {p['id']} {_summary(p)}" if p else ""
    console.print(f"ok {escape(what)} (tx {answer['tx_id']} {answer['status']}){escape(tail)}")


# -- commands -----------------------------------------------------------------------------


@app.command("propose")
def propose(
    kind: Annotated[
        str | None, typer.Argument(help=f"Action kind: {', '.join(acts.KINDS)}.")
    ] = None,
    args: Annotated[list[str] | None, typer.Argument(help="ARG=VALUE arguments.")] = None,
    title: Annotated[str, typer.Option("--title", help="What the proposal is for.")] = "",
    actions_file: Annotated[
        Path | None, typer.Option("--actions-file", help="JSON list of actions.")
    ] = None,
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    words_file: WordsOpt = None,
    key_file: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose actions; proposing counts as your ballot for."""
    if actions_file is not None:
        if kind is not None:
            raise GovUsageError("give an action KIND or --actions-file, not both")
        actions = _actions_file(actions_file)
    elif kind is None:
        raise GovUsageError("give an action KIND (with ARG=VALUE ...) or --actions-file")
    else:
        actions = [action_from_args(kind, list(args or []))]
    name, key = member_key(stack, member, words_file, key_file)
    url = _api_url(stack, name, api)
    answer = _run(url, lambda c: c.propose(name, key, actions, title or actions[0].kind))
    _print_write(answer, "proposed", as_json)


@app.command("vote")
def vote(
    proposal_id: Annotated[str, typer.Argument(metavar="ID", help="The proposal id.")],
    approve: Annotated[
        bool | None, typer.Option("--for/--against", help="Vote for or against.")
    ] = None,
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    words_file: WordsOpt = None,
    key_file: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Vote on an open proposal."""
    if approve is None:
        raise GovUsageError("give --for or --against")
    name, key = member_key(stack, member, words_file, key_file)
    url = _api_url(stack, name, api)
    answer = _run(url, lambda c: c.vote(name, key, proposal_id, approve))
    _print_write(answer, "voted " + ("for" if approve else "against"), as_json)


@app.command("withdraw")
def withdraw(
    proposal_id: Annotated[str, typer.Argument(metavar="ID", help="The proposal id.")],
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    words_file: WordsOpt = None,
    key_file: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw your own open proposal."""
    name, key = member_key(stack, member, words_file, key_file)
    url = _api_url(stack, name, api)
    answer = _run(url, lambda c: c.withdraw(name, key, proposal_id))
    _print_write(answer, "withdrew", as_json)


@app.command("list")
def list_proposals(
    state: Annotated[str | None, typer.Option("--state", help="Only proposals in STATE.")] = None,
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Proposals in log order."""
    items = _run(_api_url(stack, member, api), lambda c: c.proposals(state))
    if as_json:
        console.print_json(json.dumps({"items": items}))
        return
    table = Table("id", "proposer", "title", "actions", "state", "ballots")
    for p in items:
        kinds = ", ".join(a["kind"] for a in p["actions"])
        table.add_row(
            p["id"],
            p["proposer"],
            escape(p["title"]),
            kinds,
            p["state"],
            _summary(p).split(", ", 1)[1],
        )
    console.print(table)


@app.command("show")
def show(
    proposal_id: Annotated[str, typer.Argument(metavar="ID", help="The proposal id.")],
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
) -> None:
    """One proposal, as JSON."""
    p = _run(_api_url(stack, member, api), lambda c: c.proposal(proposal_id))
    console.print_json(json.dumps(p))


@app.command("constitution")
def constitution(stack: StackOpt = None, member: MemberOpt = None, api: ApiOpt = None) -> None:
    """The rules in force, as JSON."""
    console.print_json(json.dumps(_run(_api_url(stack, member, api), lambda c: c.constitution())))


@app.command("members")
def members(
    stack: StackOpt = None, member: MemberOpt = None, api: ApiOpt = None, as_json: JsonOpt = False
) -> None:
    """Members, their roles and status."""
    items = _run(_api_url(stack, member, api), lambda c: c.members())
    if as_json:
        console.print_json(json.dumps({"items": items}))
        return
    table = Table("name", "roles", "status", "public key")
    for m in items:
        table.add_row(m["name"], ", ".join(m["roles"]), m["status"], m["public_key"][:16] + "...")
    console.print(table)


@app.command("nodes")
def nodes(
    stack: StackOpt = None, member: MemberOpt = None, api: ApiOpt = None, as_json: JsonOpt = False
) -> None:
    """Nodes governance knows, with their status."""
    items = _run(_api_url(stack, member, api), lambda c: c.nodes())
    if as_json:
        console.print_json(json.dumps({"items": items}))
        return
    table = Table("name", "member", "status", "api", "measurement")
    for n in items:
        table.add_row(
            n["name"], n["member"], n["status"], n["api_url"], (n["measurement"] or "-")[:16]
        )
    console.print(table)


@app.command("audit")
def audit(
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    network: Annotated[
        Path | None, typer.Option("--network", help="Network file whose genesis to expect.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-verify every governance signature and decision from genesis."""
    genesis = _genesis(stack, network)
    tables = _run(_api_url(stack, member, api), lambda c: c.export())
    report = run_audit(tables, genesis=genesis)
    if as_json:
        console.print_json(json.dumps(report.to_json()))
    else:
        for f in report.findings:
            console.print(f"FAIL {escape(f.where)}: {escape(f.problem)}")
        if report.ok:
            console.print(
                f"ok audit: {report.commands} governance commands replayed from genesis, "
                f"{report.signatures} signatures verified, {report.decisions} of "
                f"{report.proposals} proposals decided as recorded"
            )
    if not report.ok:
        raise CharterError(
            f"audit found {len(report.findings)} problem(s)", code="gov.audit.failed"
        )


def _genesis(stack: str | None, network: Path | None) -> Genesis | None:
    from charter.node.network import load_network

    if network is not None:
        return genesis_from_network(load_network(network))
    if stack is not None:
        from charter.cli.stack import NETWORK_FILE, stack_dir

        return genesis_from_network(load_network(stack_dir(stack) / NETWORK_FILE))
    return None
