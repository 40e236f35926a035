"""The messages act against a three-node stack of separate `charter node run` processes."""

from __future__ import annotations

from rich.console import Console
from tests.node.process.conftest import Stack, stack

from charter.cli.demo_messages import messages_act

__all__ = ["stack"]


def test_messages_between_node_processes(stack: Stack) -> None:
    urls = {n.entry.member: n.entry.api_url for n in stack.nodes}
    console = Console(record=True, width=200)
    messages_act(console, urls)
    text = console.export_text()
    assert "has no message, data or blob" in text
    assert text.count("message_confirmed") >= 5
