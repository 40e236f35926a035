"""REST routes of tokens: ``/api/v1/tokens/...`` (see docs/tokens.md).

Every write is one ``tokens`` command submitted to this node's ledger service; the
node's handler (the same on every node) decides it when it applies. Amounts are
decimal strings of base units. A write the handler refuses answers a problem+json whose
``code`` is the violated rule (``tokens.balance``, ``tokens.authority``, ...) with the
transaction's ``tx_id``, ``tx_status`` (``Invalid``) and ``reason``: 422 for a malformed
argument, 409 for a refusal that depends on ledger state. Reads answer from this node's
applied state.

A mint, burn or transfer may carry a ``message`` (``BoundMessageIn``): it is validated like
the messages API validates one, stored and sealed alone in its own batch by the node's
messaging service, and its batch's pins record is embedded in the token command, so the
one transaction orders both. The answer (or the refusal's problem) names the message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from charter.api.messages import BoundMessageIn, prepare_message
from charter.api.problems import Problem, bounded
from charter.errors import CharterError
from charter.ledger.engine import Command, TxStatus
from charter.multiparty.errors import InvalidMessage
from charter.multiparty.service import MessagingService
from charter.node.ledger_service import LedgerService, SubmitTicket
from charter.tokens import queries as q
from charter.tokens.errors import TokensError
from charter.tokens.model import (
    APP,
    MAX_DIGITS,
    PIN_BYTES,
    Approve,
    Burn,
    CreatePool,
    Mint,
    MintPolicy,
    Operation,
    Pool,
    PoolType,
    Transfer,
    TransferRecord,
    is_account,
    is_pool_name,
    is_token_id,
    parse_amount,
)

__all__ = ["MAX_BATCH", "tokens_router"]

Wait = Literal["accepted", "committed"]
WAIT_DOC = "accepted: applied at this node (Pending); committed: covered by a signature"
MAX_BATCH = 5000
"""Most transfers one batch request may carry."""
MESSAGE_WAIT_S = 5.0
"""How long an answer waits for a carried message's final state here, once the token
transaction applied (the author holds the batch, so it settles in the writer's next round)."""

_MALFORMED = frozenset(
    {
        "tokens.body",
        "tokens.account",
        "tokens.amount",
        "tokens.token_id",
        "tokens.pool",
        "tokens.pin",
        "tokens.message",
        "tokens.transfer.self",
    }
)
_AMOUNT = Field(pattern=r"^[0-9]+$", max_length=MAX_DIGITS, examples=["1000"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PoolIn(_Body):
    name: str
    type: PoolType
    decimals: int = Field(default=0, ge=0, le=36)
    max_supply: str | None = Field(default=None, pattern=r"^[0-9]+$", max_length=MAX_DIGITS)
    mint_policy: MintPolicy = MintPolicy.CREATOR
    minters: list[str] = Field(default_factory=list, max_length=64)


class MintIn(_Body):
    pool: str
    to: str
    amount: str = _AMOUNT
    token_id: str = ""
    uri: str = Field(default="", max_length=1024)
    metadata_hash: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    message: BoundMessageIn | None = None
    """A message confirmed with the mint, or not at all."""


class BurnIn(_Body):
    pool: str
    from_: str = Field(alias="from")
    amount: str = _AMOUNT
    token_id: str = ""
    message: BoundMessageIn | None = None


class TransferIn(_Body):
    pool: str
    from_: str = Field(alias="from")
    to: str
    amount: str = _AMOUNT
    token_id: str = ""
    operator: str = ""
    """The approved operator account moving the owner's tokens ("" : the owner)."""
    pin: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    """Hex of a 32-byte message pin confirmed in the same transaction."""


class TransferWithMessageIn(TransferIn):
    message: BoundMessageIn | None = None
    """A message confirmed with the transfer, or not at all (private with ``group``)."""


class TransferBatchIn(_Body):
    transfers: list[TransferIn] = Field(min_length=1, max_length=MAX_BATCH)


class ApprovalIn(_Body):
    pool: str
    owner: str
    operator: str
    amount: str = Field(default="0", pattern=r"^[0-9]+$", max_length=MAX_DIGITS)
    operator_for_all: bool = False


def _bad(code: str, detail: str) -> Problem:
    return Problem(422, code, detail)


def _check_pool(name: str) -> None:
    if not is_pool_name(name):
        raise _bad("tokens.pool", f"{name[:80]!r} is not a pool name")


def _check_account(name: str, what: str) -> None:
    if not is_account(name):
        raise _bad("tokens.account", f"{what} {name[:80]!r} is not an account")


def _amount(text: str, what: str = "amount") -> int:
    try:
        return parse_amount(text, what)
    except TokensError as exc:
        raise _bad("tokens.amount", exc.message) from None


def _token_id(token_id: str) -> None:
    if token_id and not is_token_id(token_id):
        raise _bad("tokens.token_id", f"{token_id[:80]!r} is not a token id")


def transfer_op(body: TransferIn) -> Transfer:
    _check_pool(body.pool)
    _check_account(body.from_, "sender")
    _check_account(body.to, "recipient")
    if body.from_ == body.to:
        raise _bad("tokens.transfer.self", f"{body.from_[:80]!r} sends to itself")
    if body.operator:
        _check_account(body.operator, "operator")
    _token_id(body.token_id)
    pin = bytes.fromhex(body.pin)
    assert not pin or len(pin) == PIN_BYTES
    return Transfer(
        body.pool, body.from_, body.to, _amount(body.amount), body.token_id, body.operator, pin
    )


def ticket_doc(ticket: SubmitTicket) -> dict[str, Any]:
    doc: dict[str, Any] = {"tx_id": ticket.tx_id, "status": ticket.status.value}
    if ticket.reason is not None:
        doc["reason"] = ticket.reason
        doc["code"] = rule_of(ticket.reason)
    return doc


def rule_of(reason: str) -> str:
    rule = reason.partition(":")[0]
    return rule if rule.startswith(("tokens.", "engine.")) else "ledger.invalid"


def pool_doc(pool: Pool, supply: q.Supply | None) -> dict[str, Any]:
    return {
        "name": pool.name,
        "type": pool.type.value,
        "decimals": pool.decimals,
        "max_supply": None if pool.max_supply is None else str(pool.max_supply),
        "mint_policy": pool.mint_policy.value,
        "minters": list(pool.minters),
        "creator": pool.creator,
        "tx_id": pool.tx_id,
        "supply": "0" if supply is None else str(supply.total),
    }


def transfer_doc(rec: TransferRecord) -> dict[str, Any]:
    return {
        "seqno": rec.seqno,
        "tx_id": rec.tx_id,
        "type": rec.kind.value,
        "pool": rec.pool,
        "from": rec.from_ or None,
        "to": rec.to or None,
        "amount": str(rec.amount),
        "token_id": rec.token_id or None,
        "operator": rec.operator or None,
        "pin": rec.pin.hex() or None,
        "message_batch": rec.batch_hash.hex() or None,
        "member": rec.member,
        "batch_seq": rec.batch_seq,
    }


def refusal(ticket: SubmitTicket, extra: dict[str, Any] | None = None) -> Problem:
    """The problem answering a transaction the handler refused."""
    reason = ticket.reason or "invalid"
    rule = rule_of(reason)
    status = 422 if rule in _MALFORMED else 409
    body = {"tx_id": ticket.tx_id, "tx_status": ticket.status.value, "reason": reason}
    return Problem(status, rule, reason, extra=body | (extra or {}))


def tokens_router(
    service: LedgerService,
    *,
    request_timeout: float = 30.0,
    messaging: Callable[[], MessagingService] | None = None,
) -> APIRouter:
    """The tokens routes over ``service`` (mounted under ``/api/v1``); ``messaging()``
    answers the node's running messaging service (``LookupError`` if there is none)."""
    router = APIRouter(prefix="/tokens", tags=["tokens"])
    engine = service.engine

    def messages() -> MessagingService:
        try:
            if messaging is None:
                raise LookupError("no messaging service")
            return messaging()
        except LookupError:
            raise Problem(
                503, "mp.not_ready", "this node's messaging service is not running"
            ) from None

    async def submit(op: Operation, wait: Wait, echo: dict[str, Any]) -> dict[str, Any]:
        ticket = await bounded(
            service.submit(Command(APP, op.encode()), wait=wait), "the write", request_timeout
        )
        if ticket.status is TxStatus.INVALID:
            raise refusal(ticket)
        return ticket_doc(ticket) | echo

    async def submit_carrying(
        op: Mint | Burn | Transfer, message: BoundMessageIn, wait: Wait, echo: dict[str, Any]
    ) -> dict[str, Any]:
        """Seal the message for ``op``, then submit ``op`` with its pins record, once.

        Nothing is stored before the message and the operation's arguments are checked.
        The command is never resubmitted: if its fate is unknown (a timeout), the ledger
        still decides it, and the message follows what the ledger decided.
        """
        s = messages()
        req, items = await prepare_message(
            s, message.kind, message.header, message.group, message.data
        )
        try:
            bound = await bounded(
                s.send_bound(req, items, APP), "storing the message", request_timeout
            )
        except InvalidMessage as exc:
            raise Problem(400, exc.code, exc.message) from None
        carried = dataclasses.replace(op, message=bound.record)
        doc: dict[str, Any] = {
            "id": bound.message_id,
            "type": req.type,
            "topic": req.topic,
            "pin": bound.record.pins[0].hex(),
            "batch": bound.record.batch_hash.hex(),
            "state": "sent",
        }
        try:
            ticket = await bounded(
                service.submit(Command(APP, carried.encode()), wait=wait),
                "the write",
                request_timeout,
            )
        except Problem as timeout:
            timeout.extra.setdefault("message", doc)
            raise
        except CharterError as exc:
            unavailable = Problem.from_error(exc)
            unavailable.extra["message"] = doc
            raise unavailable from None
        refused = ticket.status is TxStatus.INVALID
        state = None
        if refused or wait == "committed":
            state = await s.wait_final(bound.message_id, min(MESSAGE_WAIT_S, request_timeout))
        doc["state"] = state or await s.message_state(bound.message_id) or "sent"
        if refused:
            raise refusal(ticket, {"message": doc})
        return ticket_doc(ticket) | echo | {"message": doc}

    async def write(
        op: Mint | Burn | Transfer,
        message: BoundMessageIn | None,
        wait: Wait,
        echo: dict[str, Any],
    ) -> dict[str, Any]:
        if message is None:
            return await submit(op, wait, echo)
        return await submit_carrying(op, message, wait, echo)

    @router.post("/pools", summary="Create a pool")
    async def create_pool(
        body: PoolIn, wait: Annotated[Wait, Query(description=WAIT_DOC)] = "accepted"
    ) -> dict[str, Any]:
        _check_pool(body.name)
        cap = None if body.max_supply is None else _amount(body.max_supply, "max_supply")
        op = CreatePool(
            body.name, body.type, body.decimals, cap, body.mint_policy, tuple(body.minters)
        )
        return await submit(op, wait, {"pool": body.name})

    @router.post("/mint", summary="Mint tokens into an account")
    async def mint(
        body: MintIn, wait: Annotated[Wait, Query(description=WAIT_DOC)] = "accepted"
    ) -> dict[str, Any]:
        _check_pool(body.pool)
        _check_account(body.to, "recipient")
        _token_id(body.token_id)
        amount = _amount(body.amount)
        op = Mint(
            body.pool, body.to, amount, body.token_id, body.uri, bytes.fromhex(body.metadata_hash)
        )
        echo = {"pool": body.pool, "to": body.to, "amount": body.amount}
        return await write(op, body.message, wait, echo)

    @router.post("/burn", summary="Burn tokens from an account this node's member owns")
    async def burn(
        body: BurnIn, wait: Annotated[Wait, Query(description=WAIT_DOC)] = "accepted"
    ) -> dict[str, Any]:
        _check_pool(body.pool)
        _check_account(body.from_, "account")
        _token_id(body.token_id)
        op = Burn(body.pool, body.from_, _amount(body.amount), body.token_id)
        echo = {"pool": body.pool, "from": body.from_, "amount": body.amount}
        return await write(op, body.message, wait, echo)

    @router.post("/transfers", summary="Transfer tokens")
    async def transfer(
        body: TransferWithMessageIn,
        wait: Annotated[Wait, Query(description=WAIT_DOC)] = "accepted",
    ) -> dict[str, Any]:
        op = transfer_op(body)
        if op.pin and body.message is not None:
            raise _bad("tokens.message", "a transfer carries a pin or a message, not both")
        echo = {"pool": body.pool, "from": body.from_, "to": body.to, "amount": body.amount}
        if body.token_id:
            echo["token_id"] = body.token_id
        return await write(op, body.message, wait, echo)

    @router.post(
        "/transfers/batch",
        summary="Many transfers, each its own transaction; one answer per transfer",
    )
    async def transfer_batch(
        body: TransferBatchIn, wait: Annotated[Wait, Query(description=WAIT_DOC)] = "accepted"
    ) -> dict[str, Any]:
        ops = [transfer_op(t) for t in body.transfers]
        work = service.submit_many([Command(APP, op.encode()) for op in ops], wait=wait)
        tickets = await bounded(work, "the batch", request_timeout)
        results = [ticket_doc(t) for t in tickets]
        done = sum(1 for t in tickets if t.status is not TxStatus.INVALID)
        return {"results": results, "accepted": done, "refused": len(tickets) - done}

    @router.post("/approvals", summary="Approve an operator (allowance or for all)")
    async def approve(
        body: ApprovalIn, wait: Annotated[Wait, Query(description=WAIT_DOC)] = "accepted"
    ) -> dict[str, Any]:
        _check_pool(body.pool)
        _check_account(body.owner, "owner")
        _check_account(body.operator, "operator")
        op = Approve(
            body.pool, body.owner, body.operator, _amount(body.amount), body.operator_for_all
        )
        echo = {
            "pool": body.pool,
            "owner": body.owner,
            "operator": body.operator,
            "amount": body.amount,
            "operator_for_all": body.operator_for_all,
        }
        return await submit(op, wait, echo)

    @router.get("/pools", summary="List pools")
    async def list_pools(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        pools = q.pools(engine)[after : after + limit]
        return [pool_doc(p, q.supply(engine, p.name)) for p in pools]

    @router.get("/pools/{name}", summary="One pool")
    async def get_pool(name: str) -> dict[str, Any]:
        pool = q.pool(engine, name) if is_pool_name(name) else None
        if pool is None:
            raise Problem(404, "tokens.pool.not_found", f"no pool {name[:80]!r}")
        return pool_doc(pool, q.supply(engine, name))

    @router.get("/balances", summary="Balances by account and pool (non-zero ones)")
    async def balances(
        pool: str | None = None,
        account: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        after: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict[str, str]]:
        rows = q.balances(engine, pool, account)[after : after + limit]
        if pool is not None and account is not None and not rows:
            rows = [q.Balance(account, pool, 0)]
        return [{"account": b.account, "pool": b.pool, "balance": str(b.balance)} for b in rows]

    @router.get("/supply", summary="Minted, burned and total supply of a pool")
    async def supply(pool: str) -> dict[str, Any]:
        found = q.pool(engine, pool) if is_pool_name(pool) else None
        s = q.supply(engine, pool) if found is not None else None
        if found is None or s is None:
            raise Problem(404, "tokens.pool.not_found", f"no pool {pool[:80]!r}")
        return {
            "pool": pool,
            "minted": str(s.minted),
            "burned": str(s.burned),
            "total": str(s.total),
            "max_supply": None if found.max_supply is None else str(found.max_supply),
        }

    @router.get("/transfers", summary="Token history: mints, burns and transfers in log order")
    async def transfers(
        pool: str | None = None,
        account: str | None = None,
        after: Annotated[int, Query(ge=0, description="a seqno: answer transfers after it")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        recs = q.transfers(engine, pool_name=pool, account=account, after=after, limit=limit)
        return [transfer_doc(r) for r in recs]

    return router
