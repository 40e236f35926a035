"""A command transaction in a few words: its kind and a one-line summary.

The explorer names each transaction by the area that handled it (``mp`` pins, tokens,
governance) and says what it asked, decoded with each area's own parser. Nothing here
decides anything: a body that does not parse is shown as such, never trusted.
"""

from __future__ import annotations

from typing import Any, Final

from charter.codec.syrup import Record, Symbol, SyrupError, decode
from charter.errors import CharterError
from charter.governance.join import GOV_APP
from charter.governance.requests import Ballot, Propose, SignedRequest, Withdraw
from charter.ledger.engine.commands import Command
from charter.multiparty.pins import APP as MP_APP
from charter.multiparty.pins import Clock, parse_body
from charter.tokens.model import APP as TOKENS_APP
from charter.tokens.model import Approve, BadBody, Burn, CreatePool, Mint, Transfer
from charter.tokens.model import decode_operation as decode_tokens

__all__ = ["KINDS", "describe_command", "kind_of_app"]

KINDS: Final = frozenset(
    {"write", "mp", "tokens", "governance", "signature", "snapshot", "malformed", "other"}
)
"""The kinds the ledger view filters by; a command of an app not listed is ``other``."""

_GOV_LABELS: Final = {
    "charter-gov-bootstrap": "bootstrap",
    "charter-join-signed": "join request",
}


_KIND_OF_APP: Final = {TOKENS_APP: "tokens", MP_APP: "mp", GOV_APP: "governance"}


def kind_of_app(app: str) -> str:
    return _KIND_OF_APP.get(app, "other")


def describe_command(command: Command) -> tuple[str, dict[str, Any]]:
    if command.app == TOKENS_APP:
        return "tokens", _tokens(command.body)
    if command.app == MP_APP:
        return "mp", _pins(command.body)
    if command.app == GOV_APP:
        return "governance", _governance(command.body)
    return "other", {"app": command.app, "summary": f"{command.app} command"}


def _tokens(body: bytes) -> dict[str, Any]:
    try:
        op = decode_tokens(body)
    except BadBody:
        return {"op": None, "summary": "malformed tokens command"}
    if isinstance(op, CreatePool):
        return {"op": "pool", "pool": op.name, "summary": f"create pool {op.name}"}
    if isinstance(op, Mint):
        what = op.token_id or str(op.amount)
        return {"op": "mint", "pool": op.pool, "summary": f"mint {what} {op.pool} to {op.to}"}
    if isinstance(op, Burn):
        what = op.token_id or str(op.amount)
        return {"op": "burn", "pool": op.pool, "summary": f"burn {what} {op.pool} of {op.from_}"}
    if isinstance(op, Transfer):
        what = op.token_id or str(op.amount)
        summary = f"transfer {what} {op.pool} {op.from_} → {op.to}"
        return {"op": "transfer", "pool": op.pool, "summary": summary}
    if isinstance(op, Approve):
        summary = f"approve {op.operator} on {op.pool} for {op.owner}"
        return {"op": "approve", "pool": op.pool, "summary": summary}
    return {"op": None, "summary": "tokens command"}


def _pins(body: bytes) -> dict[str, Any]:
    try:
        parsed = parse_body(body)
    except CharterError:
        return {"op": None, "summary": "malformed pins"}
    if isinstance(parsed, Clock):
        return {"op": "clock", "summary": "ledger clock"}
    count = len(parsed.pins)
    return {
        "op": "pins",
        "pins": count,
        "batch": parsed.batch_hash.hex(),
        "summary": f"{count} message pin{'s' if count != 1 else ''}",
    }


def _governance(body: bytes) -> dict[str, Any]:
    try:
        value = decode(body)
    except SyrupError:
        return {"op": None, "summary": "malformed governance command"}
    label = (
        value.label.name if isinstance(value, Record) and isinstance(value.label, Symbol) else ""
    )
    if label in _GOV_LABELS:
        return {"op": _GOV_LABELS[label], "summary": _GOV_LABELS[label]}
    try:
        request = SignedRequest.decode(body).request
    except CharterError:
        return {"op": None, "summary": "governance command"}
    payload = request.payload
    out: dict[str, Any] = {"by": request.member}
    if isinstance(payload, Propose):
        out.update(op="propose", summary=f"{request.member} proposes “{payload.title}”")
    elif isinstance(payload, Ballot):
        vote = "for" if payload.approve else "against"
        out.update(
            op="ballot",
            proposal=payload.proposal_id,
            summary=f"{request.member} votes {vote} {payload.proposal_id}",
        )
    elif isinstance(payload, Withdraw):
        out.update(
            op="withdraw",
            proposal=payload.proposal_id,
            summary=f"{request.member} withdraws {payload.proposal_id}",
        )
    return out
