"""The explorer of a real network: three `charter node run` processes on loopback.

The browser test drives Debian's Chromium through Playwright (headless). Without
``/usr/bin/chromium`` it is skipped, unless ``CHARTER_REQUIRE_BROWSER=1`` (CI), where
it fails saying so.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.node.process.conftest import Stack, stack

from charter.cli.demo_net import until

__all__ = ["stack"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
UI_WAIT_MS = 15_000


def network(stack: Stack, name: str) -> dict[str, Any]:
    r = stack.client.get(stack.url(name, "/api/v1/explorer/network"), timeout=5.0)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_network_view_over_http(stack: Stack) -> None:
    names = stack.names()
    leader = stack.leader()

    def settled() -> dict[str, Any] | None:
        doc = network(stack, names[1])
        ok = all(n["reachable"] and n["ready"] for n in doc["nodes"]) and len(doc["links"]) == 3
        return doc if ok else None

    doc = until(settled, 15.0, "every node reachable, ready and linked")
    assert doc["observer"] == names[1]
    assert sorted(n["name"] for n in doc["nodes"]) == sorted(names)
    roles = [n["role"] for n in doc["nodes"]]
    assert roles.count("leader") == 1 and roles.count("follower") == 2
    assert next(n for n in doc["nodes"] if n["role"] == "leader")["name"] == leader
    assert {n["member"] for n in doc["nodes"]} == {n.entry.member for n in stack.nodes}
    assert all(link["both"] for link in doc["links"])
    for n in doc["nodes"]:
        assert n["api_url"] == stack.node(n["name"]).entry.api_url
        assert isinstance(n["lag"], int) and n["lag"] >= 0
        assert isinstance(n["commit_index"], int) and n["term"] == doc["term"]


@pytest.fixture(scope="module")
def chromium_path() -> Iterator[Path]:
    """Asked for before the stack, so a run without a browser starts no nodes for it."""
    if not CHROMIUM.exists():
        why = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CHARTER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CHARTER_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    yield CHROMIUM


def test_explorer_in_a_browser(chromium_path: Path, stack: Stack, tmp_path: Path) -> None:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        if os.environ.get("CHARTER_REQUIRE_BROWSER") == "1":
            pytest.fail("CHARTER_REQUIRE_BROWSER=1 but the playwright package is not installed")
        pytest.skip("the playwright package is not installed (pip install -e .[dev])")
    names = stack.names()
    first, second = names[0], names[1]
    m1 = stack.node(first).entry.member
    http = stack.client
    errors: list[str] = []
    profile = tempfile.mkdtemp(prefix="explorer-profile-", dir=tmp_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(chromium_path),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: (
                    errors.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
                ),
            )
            page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
            page.goto(stack.url(first, "/"))
            assert page.url == stack.url(first, "/explorer")
            expect(page.locator("#network-table tbody tr")).to_have_count(3, timeout=UI_WAIT_MS)
            expect(page.locator(".stream-state")).to_contain_text("live", timeout=UI_WAIT_MS)

            # write through the API while the page is open
            tx = stack.put(second, "orders", f"o-{uuid.uuid4().hex[:8]}", {"qty": 3})
            sent = http.post(
                stack.url(second, "/api/v1/messages/broadcast"),
                params={"wait": "confirmed"},
                json={"header": {"topic": "explorer-test"}, "data": [{"value": {"n": 1}}]},
                timeout=20.0,
            )
            assert sent.status_code == 200, sent.text
            message = sent.json()["id"]
            pool = f"gold-{uuid.uuid4().hex[:6]}"
            for path, body in (
                ("/pools", {"name": pool, "type": "fungible", "decimals": 2}),
                ("/mint", {"pool": pool, "to": m1, "amount": "1234567"}),
            ):
                r = http.post(
                    stack.url(first, f"/api/v1/tokens{path}"),
                    params={"wait": "committed"},
                    json=body,
                    timeout=15.0,
                )
                assert r.status_code == 200 and r.json()["status"] == "Committed", r.text

            # the network: three nodes drawn, exactly one of them the leader
            nodes = page.locator("svg g.node")
            expect(nodes).to_have_count(3, timeout=UI_WAIT_MS)
            expect(page.locator('svg g.node[data-role="leader"]')).to_have_count(1)
            expect(page.locator('svg g.node[data-role="follower"]')).to_have_count(2)
            expect(page.locator("svg line.link")).to_have_count(3)

            # the ledger: the write, Committed, with its receipt
            page.click("#tab-ledger")
            row = page.locator(f'#ledger-table tr[data-tx-id="{tx}"]')
            expect(row).to_have_attribute("data-status", "Committed", timeout=UI_WAIT_MS)
            expect(row).to_have_attribute("data-kind", "write")
            link = row.locator("a", has_text="receipt")
            assert link.get_attribute("href") == f"/api/v1/tx/{tx}/receipt"
            receipt = http.get(stack.url(first, f"/api/v1/tx/{tx}/receipt"), timeout=5.0)
            assert receipt.status_code == 200 and "signature" in receipt.text
            expect(page.locator(f'svg g.tx[data-tx-id="{tx}"]')).to_have_count(1)
            expect(page.locator("svg g.bracket").first).to_be_attached()

            # messages and events: the broadcast, confirmed here, and its live event
            page.click("#tab-messages")
            expect(
                page.locator(f'#message-table tr[data-message-id="{message}"]')
            ).to_have_attribute("data-state", "confirmed", timeout=UI_WAIT_MS)
            event = page.locator(
                f'#event-list li[data-type="message_confirmed"][data-reference="{message}"]'
            )
            expect(event).to_have_count(1, timeout=UI_WAIT_MS)
            expect(event).to_have_class("live")

            # tokens: the minted balance as a bar, in the pool's decimals
            page.click("#tab-tokens")
            bar = page.locator(f'svg g.balance[data-pool="{pool}"][data-account="{m1}"]')
            expect(bar).to_have_attribute("data-balance", "1234567", timeout=UI_WAIT_MS)
            expect(bar).to_contain_text("12,345.67")
            expect(page.locator('#transfer-table tr[data-type="mint"]').first).to_be_attached()

            # governance: members and nodes drawn from the ledger
            page.click("#tab-governance")
            expect(page.locator("tr[data-member]")).to_have_count(3, timeout=UI_WAIT_MS)
            expect(page.locator("tr[data-node]")).to_have_count(3)

            for tab in ("network", "ledger", "messages", "tokens", "governance"):
                page.click(f"#tab-{tab}")
                expect(page.locator(f"#view-{tab} .panel-error:visible")).to_have_count(0)
            page.click("#tab-network")
            shot = tmp_path / "explorer.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            page.close()  # ends the page's WebSocket subscription
        finally:
            browser.close()
    assert errors == [], errors


def test_an_unreachable_node_is_drawn_as_such(stack: Stack) -> None:
    names = stack.names()
    leader = stack.leader()
    victim = next(n for n in names if n != leader)
    observer = next(n for n in names if n not in (leader, victim))
    stack.kill9(victim)

    def marked() -> dict[str, Any] | None:
        doc = network(stack, observer)
        row = next(n for n in doc["nodes"] if n["name"] == victim)
        return doc if row["reachable"] is False else None

    doc = until(marked, 15.0, f"{victim} shown unreachable")
    row = next(n for n in doc["nodes"] if n["name"] == victim)
    assert row["error"] and row["role"] is None and row["ready"] is None
    alive = [n for n in doc["nodes"] if n["name"] != victim]
    assert all(n["reachable"] for n in alive)
    assert [n["name"] for n in alive if n["role"] == "leader"] == [leader]
