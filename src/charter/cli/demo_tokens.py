"""The demo's tokens act: trade finance between a buyer's bank, a supplier and its financier.

``tokens_act(console, base_urls)`` takes member name -> API base URL (at least three
members; the first three in name order play the buyer's bank, the supplier and the
supplier's financier) and runs:

1. the bank creates a payment pool (2 decimals, only the bank mints) and mints into
   its buyer's account;
2. the supplier shares its delivery note privately with its financier (a private
   message to the group {supplier, financier}; the bank's node never sees it);
3. on delivery the bank pays the supplier, and the payment carries the buyer's remittance
   advice, a message private to the supplier: the message and the payment are confirmed
   together by one transaction (the financier's node sees neither the message nor its
   topic, only a salted pin in that transaction);
4. the supplier lets its financier collect the financed share (an allowance), and the
   financier's node collects it as the approved operator;
5. every node reports the same balances, supply equals minted minus burned, the
   financier's node has the token events, and the payment has a receipt.

Every wait is bounded; each step prints one ``ok`` line. Raises ``DemoError`` on failure.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Mapping
from typing import Any, Final

import httpx
from rich.console import Console
from rich.markup import escape

from charter.cli.demo_net import DemoError, until
from charter.tokens.client import TokensApiError, TokensClient

__all__ = ["tokens_act"]

HTTP_TIMEOUT: Final = 30.0
AGREE_TIMEOUT: Final = 20.0
INVOICE: Final = 250_000_00
"""250,000.00 in base units (2 decimals)."""
FINANCED: Final = 200_000_00


def _ok(console: Console, text: str) -> None:
    console.print(f"[green]ok[/] {escape(text)}")


def _share_delivery_note(
    console: Console,
    http: httpx.Client,
    urls: Mapping[str, str],
    supplier: str,
    financier: str,
    bank: str,
    pool: str,
) -> None:
    body = {
        "header": {"topic": f"trade/{pool}", "tag": "delivery-note"},
        "group": {"members": sorted([supplier, financier])},
        "data": [{"value": {"invoice": f"INV-{pool}", "amount": str(INVOICE), "delivered": True}}],
    }
    r = http.post(
        f"{urls[supplier]}/api/v1/messages/private",
        json=body,
        params={"wait": "confirmed", "timeout": HTTP_TIMEOUT},
        timeout=HTTP_TIMEOUT + 5,
    )
    if (
        r.status_code == 404
        and r.headers.get("content-type", "").startswith("application/problem+json")
        and r.json().get("code") == "api.not_found"
        and "no route" in r.json().get("detail", "")
    ):
        console.print("skip private delivery note: this node serves no messages API")
        return
    if r.status_code not in (200, 201, 202):
        raise DemoError(f"private delivery note: {r.status_code} {r.text[:200]}")
    message_id = r.json()["id"]

    def arrived() -> bool:
        got = http.get(f"{urls[financier]}/api/v1/messages/{message_id}", timeout=5.0)
        return got.status_code == 200 and got.json().get("state") == "confirmed"

    until(arrived, AGREE_TIMEOUT, f"the delivery note at {financier}")
    hidden = http.get(f"{urls[bank]}/api/v1/messages/{message_id}", timeout=5.0)
    if hidden.status_code == 200:
        raise DemoError(f"{bank} can read the supplier's private delivery note")
    _ok(console, f"{supplier} shared its delivery note privately with {financier} (not {bank})")


def _remittance_received(
    console: Console,
    http: httpx.Client,
    urls: Mapping[str, str],
    paid: Mapping[str, Any],
    supplier: str,
    financier: str,
) -> None:
    """The supplier's node confirmed the remittance with the payment's own transaction."""
    carried = paid.get("message")
    if not isinstance(carried, Mapping):
        raise DemoError("the payment does not name the message it carried")
    message_id, tx_id = str(carried["id"]), str(paid["tx_id"])

    def confirmed() -> dict[str, Any] | None:
        got = http.get(f"{urls[supplier]}/api/v1/messages/{message_id}", timeout=5.0)
        if got.status_code != 200:
            return None
        doc: dict[str, Any] = got.json()
        return doc if doc.get("state") in ("confirmed", "failed") else None

    doc = until(confirmed, AGREE_TIMEOUT, f"the remittance at {supplier}")
    pin_tx = (doc.get("pin") or {}).get("tx_id")
    if doc["state"] != "confirmed" or pin_tx != tx_id:
        raise DemoError(f"the remittance at {supplier} is {doc['state']} at {pin_tx}, not {tx_id}")
    hidden = http.get(f"{urls[financier]}/api/v1/messages/{message_id}", timeout=5.0)
    if hidden.status_code == 200:
        raise DemoError(f"{financier} can read the buyer's remittance")
    history = http.get(
        f"{urls[financier]}/api/v1/tokens/transfers",
        params={"pool": str(paid["pool"]), "limit": 1000},
        timeout=5.0,
    )
    rows = [h for h in history.json() if h.get("tx_id") == tx_id] if history.is_success else []
    if not rows or rows[0].get("pin") != carried.get("pin"):
        raise DemoError(f"{financier}'s ledger does not hold the remittance's pin at {tx_id}")
    _ok(
        console,
        f"{supplier} received the buyer's remittance {message_id[:8]} confirmed with the payment"
        f" (tx {tx_id}); {financier} sees only its pin",
    )


def _token_events(
    console: Console, http: httpx.Client, url: str, pool: str, payment_tx: str
) -> None:
    params: dict[str, str | int] = {"topic": f"tokens/{pool}", "limit": 100}

    def seen() -> list[dict[str, Any]] | None:
        r = http.get(f"{url}/api/v1/events", params=params, timeout=5.0)
        if r.status_code == 404 and "no route" in r.text:
            return []
        r.raise_for_status()
        events: list[dict[str, Any]] = r.json()
        return events if any(e["tx_id"] == payment_tx for e in events) else None

    events = until(seen, AGREE_TIMEOUT, f"token events of {pool}")
    if not events:
        console.print("skip token events: this node serves no events API")
        return
    kinds = sorted({e["type"] for e in events})
    _ok(console, f"{len(events)} token events on the financier's event log ({', '.join(kinds)})")


def tokens_act(
    console: Console, base_urls: Mapping[str, str], http: httpx.Client | None = None
) -> dict[str, Any]:
    """Run the act (see the module notes); answers what it did, for a caller to show."""
    members = sorted(base_urls)
    if len(members) < 3:
        raise DemoError("the tokens act needs three members")
    bank, supplier, financier = members[:3]
    own = http is None
    client = http or httpx.Client()
    try:
        api = {m: TokensClient(base_urls[m], client, HTTP_TIMEOUT) for m in members}
        pool = f"pay-{secrets.token_hex(3)}"
        buyer = f"{bank}/buyer"
        try:
            api[bank].create_pool(pool, "fungible", 2)
            _ok(console, f"{bank} created payment pool {pool} (2 decimals, only {bank} mints)")
            api[bank].mint(pool, buyer, 1_000_000_00)
            _ok(console, f"{bank} minted 1,000,000.00 {pool} to {buyer}")
            try:
                api[supplier].mint(pool, supplier, 1)
                raise DemoError(f"{supplier} could mint in {bank}'s pool")
            except TokensApiError as exc:
                if exc.code != "tokens.mint.authority":
                    raise
                _ok(console, f"{supplier} may not mint in {pool}: refused by every node")

            _share_delivery_note(console, client, base_urls, supplier, financier, bank, pool)

            remittance = TokensClient.message_body(
                f"trade/{pool}",
                [{"invoice": f"INV-{pool}", "paid": str(INVOICE), "payer": buyer}],
                private_to=[supplier],
                tag="remittance",
            )
            paid = api[bank].transfer(pool, buyer, supplier, INVOICE, message=remittance)
            _ok(
                console,
                f"{bank} paid {supplier} 250,000.00 on delivery with the buyer's remittance"
                f" (tx {paid['tx_id']})",
            )
            _remittance_received(console, client, base_urls, paid, supplier, financier)
            api[supplier].approve(pool, supplier, financier, amount=FINANCED)
            _ok(console, f"{supplier} allowed {financier} to collect 200,000.00")
            collected = api[financier].transfer(
                pool, supplier, financier, FINANCED, operator=financier
            )
            _ok(console, f"{financier} collected 200,000.00 as operator (tx {collected['tx_id']})")
            try:
                api[financier].transfer(pool, supplier, financier, 1, operator=financier)
                raise DemoError(f"{financier} collected beyond its allowance")
            except TokensApiError as exc:
                if exc.code != "tokens.allowance":
                    raise
                _ok(console, f"{financier} cannot collect more: the allowance is spent")
        except TokensApiError as exc:
            raise DemoError(f"tokens: [{exc.code}] {exc.message}") from None

        expected = {buyer: 750_000_00, supplier: 50_000_00, financier: 200_000_00}

        def agreed(member: str) -> bool:
            rows = api[member].balances(pool)
            return {r["account"]: int(r["balance"]) for r in rows} == expected

        started = time.monotonic()
        for m in members:
            until(functools.partial(agreed, m), AGREE_TIMEOUT, f"balances of {pool} at {m}")
        supply = api[members[-1]].supply(pool)
        if supply["total"] != str(1_000_000_00):
            raise DemoError(f"supply of {pool} is {supply['total']}, not 100000000")
        _ok(
            console,
            f"all {len(members)} nodes agree on every balance of {pool}; supply 1,000,000.00 "
            f"({time.monotonic() - started:.1f} s)",
        )
        _token_events(console, client, base_urls[financier], pool, paid["tx_id"])
        r = client.get(
            f"{base_urls[supplier]}/api/v1/tx/{paid['tx_id']}/receipt", timeout=HTTP_TIMEOUT
        )
        if r.status_code != 200:
            raise DemoError(f"no receipt for the payment {paid['tx_id']}: {r.status_code}")
        _ok(console, f"the payment's receipt ({len(r.content)} bytes) proves it in the ledger")
        return {
            "pool": pool,
            "payment_tx": paid["tx_id"],
            "remittance": paid["message"]["id"],
            "balances": expected,
        }
    finally:
        if own:
            client.close()
