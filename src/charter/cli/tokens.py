"""``charter tokens``: pools, mint, burn, transfer, approve, balances, history.

Every command talks to one node's REST API: ``--api URL``, or ``--stack NAME`` with
``--member NAME`` (that member's first node in the local stack). Writes wait until the
transaction is committed; a refused one prints its rule and reason and exits 1.

``transfer`` may carry a message (``--data``, with ``--topic``, ``--tag`` and
``--private-to``): it is confirmed with the transfer, or fails with it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from charter.errors import CharterError
from charter.tokens.client import TokensApiError, TokensClient
from charter.tokens.model import parse_amount

app = typer.Typer(
    help="Tokens: fungible and non-fungible pools, transfers, balances.", no_args_is_help=True
)
pool_app = typer.Typer(help="Token pools.", no_args_is_help=True)
app.add_typer(pool_app, name="pool")
console = Console(highlight=False, soft_wrap=True)


class TokensUsageError(CharterError):
    code = "cli.tokens.usage"


StackOpt = Annotated[str | None, typer.Option("--stack", help="Local stack NAME (with --member).")]
MemberOpt = Annotated[
    str | None, typer.Option("--member", help="The member whose node to use (with --stack).")
]
ApiOpt = Annotated[str | None, typer.Option("--api", help="A node's API base URL.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON answer.")]
TokenIdOpt = Annotated[str, typer.Option("--token-id", help="Token id (non-fungible pools).")]


def client_for(stack: str | None, member: str | None, api: str | None) -> TokensClient:
    if api is not None:
        if stack is not None:
            raise TokensUsageError("give --api or --stack, not both")
        return TokensClient(api)
    if stack is None:
        raise TokensUsageError("give --api URL, or --stack NAME --member NAME")
    from charter.cli.stack import open_stack

    _, nodes = open_stack(stack)
    if member is None:
        raise TokensUsageError(
            f"--member is required with --stack (one of {sorted({n.entry.member for n in nodes})})"
        )
    for n in nodes:
        if member in (n.entry.member, n.entry.name):
            return TokensClient(n.entry.api_url)
    raise TokensUsageError(f"stack {stack!r} has no member or node {member!r}")


def _amount(text: str) -> int:
    return parse_amount(text)


def _written(doc: dict[str, Any], what: str, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(doc))
        return
    console.print(f"ok {escape(what)}: tx {doc['tx_id']} {doc['status']}")


@pool_app.command("create")
def pool_create(
    name: Annotated[str, typer.Argument(help="Pool name, unique in the network.")],
    type_: Annotated[str, typer.Option("--type", help="fungible or nonfungible.")] = "fungible",
    decimals: Annotated[int, typer.Option("--decimals", help="Display decimals.")] = 0,
    max_supply: Annotated[
        str | None, typer.Option("--max-supply", help="Cap on minted - burned (base units).")
    ] = None,
    mint_policy: Annotated[
        str, typer.Option("--mint-policy", help="creator, any or listed.")
    ] = "creator",
    minter: Annotated[
        list[str] | None, typer.Option("--minter", help="A member who may mint (listed).")
    ] = None,
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a pool."""
    c = client_for(stack, member, api)
    cap = None if max_supply is None else _amount(max_supply)
    doc = c.create_pool(
        name,
        type_,
        decimals,
        max_supply=cap,
        mint_policy=mint_policy,
        minters=sorted(set(minter or [])),
    )
    _written(doc, f"pool {name} created", as_json)


@pool_app.command("list")
def pool_list(
    stack: StackOpt = None, member: MemberOpt = None, api: ApiOpt = None, as_json: JsonOpt = False
) -> None:
    """List pools."""
    pools = client_for(stack, member, api).pools()
    if as_json:
        console.print_json(json.dumps(pools))
        return
    table = Table("name", "type", "decimals", "supply", "max supply", "minting", "creator")
    for p in pools:
        minting = p["mint_policy"] + (f" {','.join(p['minters'])}" if p["minters"] else "")
        table.add_row(
            escape(p["name"]),
            p["type"],
            str(p["decimals"]),
            p["supply"],
            p["max_supply"] or "-",
            escape(minting),
            escape(p["creator"]),
        )
    console.print(table)


@app.command("mint")
def mint(
    pool: Annotated[str, typer.Argument(help="Pool name.")],
    to: Annotated[str, typer.Argument(help="Recipient account (member or member/user).")],
    amount: Annotated[str, typer.Argument(help="Base units (1 for a non-fungible token).")],
    token_id: TokenIdOpt = "",
    uri: Annotated[str, typer.Option("--uri", help="Token URI (non-fungible).")] = "",
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mint tokens into an account."""
    doc = client_for(stack, member, api).mint(pool, to, _amount(amount), token_id=token_id, uri=uri)
    _written(doc, f"minted {amount} {pool} to {to}", as_json)


@app.command("burn")
def burn(
    pool: Annotated[str, typer.Argument(help="Pool name.")],
    from_: Annotated[str, typer.Argument(metavar="FROM", help="Account to burn from.")],
    amount: Annotated[str, typer.Argument(help="Base units.")],
    token_id: TokenIdOpt = "",
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Burn tokens from an account of this node's member."""
    doc = client_for(stack, member, api).burn(pool, from_, _amount(amount), token_id=token_id)
    _written(doc, f"burned {amount} {pool} from {from_}", as_json)


def carried_message(
    topic: str | None, tag: str, data: list[str] | None, private_to: list[str] | None
) -> dict[str, Any] | None:
    """The message ``--topic/--tag/--data/--private-to`` describe (None: no ``--data``)."""
    if not data:
        if topic is not None or tag or private_to:
            raise TokensUsageError("a carried message needs at least one --data JSON value")
        return None
    values = []
    for i, text in enumerate(data, start=1):
        try:
            values.append(json.loads(text))
        except ValueError as exc:
            raise TokensUsageError(f"--data #{i} is not JSON: {exc}") from None
    return TokensClient.message_body(
        topic or "", values, private_to=sorted(set(private_to or [])), tag=tag
    )


@app.command("transfer")
def transfer(
    pool: Annotated[str, typer.Argument(help="Pool name.")],
    from_: Annotated[str, typer.Argument(metavar="FROM", help="Sending account.")],
    to: Annotated[str, typer.Argument(help="Receiving account.")],
    amount: Annotated[str, typer.Argument(help="Base units (1 for a non-fungible token).")],
    token_id: TokenIdOpt = "",
    operator: Annotated[
        str, typer.Option("--operator", help="Approved operator account moving FROM's tokens.")
    ] = "",
    topic: Annotated[
        str | None, typer.Option("--topic", help="Topic of the message the transfer carries.")
    ] = None,
    tag: Annotated[str, typer.Option("--tag", help="Tag of the carried message.")] = "",
    data: Annotated[
        list[str] | None,
        typer.Option("--data", help="A JSON value of the carried message (repeatable)."),
    ] = None,
    private_to: Annotated[
        list[str] | None,
        typer.Option(
            "--private-to",
            help="A member the message is private to (repeatable; else a broadcast).",
        ),
    ] = None,
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Transfer tokens, optionally with a message confirmed together with the transfer."""
    message = carried_message(topic, tag, data, private_to)
    client = client_for(stack, member, api)
    try:
        doc = client.transfer(
            pool, from_, to, _amount(amount), token_id=token_id, operator=operator, message=message
        )
    except TokensApiError as exc:
        if exc.carried is None or "id" not in exc.carried:
            raise
        state = exc.carried.get("state", "sent")
        raise TokensApiError(
            f"{exc.message} (message {exc.carried['id']} {state})",
            code=exc.code,
            tx_id=exc.tx_id,
            carried=exc.carried,
        ) from None
    _written(doc, f"transferred {amount} {pool} from {from_} to {to}", as_json)
    carried = doc.get("message")
    if carried is not None and not as_json:
        to_whom = "private to " + ", ".join(private_to or []) if private_to else "broadcast"
        console.print(
            f"ok message {carried['id']} {carried['state']} with tx {doc['tx_id']}"
            f" ({escape(to_whom)})"
        )


@app.command("approve")
def approve(
    pool: Annotated[str, typer.Argument(help="Pool name.")],
    owner: Annotated[str, typer.Argument(help="Owning account.")],
    operator: Annotated[str, typer.Argument(help="Operator account.")],
    amount: Annotated[
        str, typer.Option("--amount", help="Allowance in base units (0 revokes).")
    ] = "0",
    all_: Annotated[
        bool, typer.Option("--all", help="Operator for all of OWNER's tokens in the pool.")
    ] = False,
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve an operator: an allowance, or for all."""
    doc = client_for(stack, member, api).approve(
        pool, owner, operator, amount=_amount(amount), operator_for_all=all_
    )
    what = "for all" if all_ else f"for {amount}"
    _written(doc, f"{operator} approved by {owner} {what} in {pool}", as_json)


@app.command("balances")
def balances(
    pool: Annotated[str | None, typer.Option("--pool", help="Only this pool.")] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Balances by pool and account."""
    rows = client_for(stack, member, api).balances(pool, account)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("pool", "account", "balance")
    for r in rows:
        table.add_row(escape(r["pool"]), escape(r["account"]), r["balance"])
    console.print(table)


@app.command("transfers")
def transfers(
    pool: Annotated[str | None, typer.Option("--pool", help="Only this pool.")] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    after: Annotated[int, typer.Option("--after", help="Only after this seqno.")] = 0,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 100,
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Token history: mints, burns and transfers in ledger order."""
    rows = client_for(stack, member, api).transfers(pool, account, after, limit)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("tx", "type", "pool", "from", "to", "amount", "token")
    for r in rows:
        table.add_row(
            r["tx_id"],
            r["type"],
            escape(r["pool"]),
            escape(r["from"] or "-"),
            escape(r["to"] or "-"),
            r["amount"],
            escape(r["token_id"] or ""),
        )
    console.print(table)


@app.command("supply")
def supply(
    pool: Annotated[str, typer.Argument(help="Pool name.")],
    stack: StackOpt = None,
    member: MemberOpt = None,
    api: ApiOpt = None,
) -> None:
    """Minted, burned and total supply of a pool."""
    doc = client_for(stack, member, api).supply(pool)
    console.print(
        f"{escape(pool)}: total {doc['total']} (minted {doc['minted']}, burned {doc['burned']}"
        f", max {doc['max_supply'] or '-'})"
    )


__all__ = ["TokensApiError", "app"]
