"""The demo's messages act against three members served over real HTTP and WebSocket."""

from __future__ import annotations

import contextlib
from pathlib import Path

from rich.console import Console
from tests.multiparty.events.conftest import serve
from tests.multiparty.netfix import mp_network

from charter.cli.demo_messages import _act


async def test_messages_act(tmp_path: Path) -> None:
    async with mp_network(tmp_path) as mp, contextlib.AsyncExitStack() as stack:
        urls = {}
        for nid in mp.net.ids:
            address = await stack.enter_async_context(serve(mp.apps[nid]))
            urls[f"member-{nid}"] = f"http://{address}"
        console = Console(record=True, width=200)
        await _act(console, urls)
        text = console.export_text()
        assert "ok member-3 has no message, data or blob" in text
        assert "ok all three nodes released the broadcast" in text
        assert text.count("message_confirmed") >= 5  # 3 broadcast + 2 private, streamed live
