"""The node's HTTP listeners: connections without Nagle's delay, clear bind errors."""

from __future__ import annotations

import asyncio
import socket

import pytest

from charter.node.process import NodeBindError, bind_listener


async def test_accepted_connections_have_tcp_nodelay() -> None:
    # asyncio turns Nagle off only for IPPROTO_TCP sockets; an answer written as head
    # then body would otherwise wait for the client's delayed ACK on every request.
    listener = bind_listener("127.0.0.1", 0, "the test")
    port = listener.getsockname()[1]
    accepted: asyncio.Queue[int] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        await accepted.put(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(handle, sock=listener)
    async with server:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        nodelay = await asyncio.wait_for(accepted.get(), 5)
        writer.close()
    assert nodelay != 0


def test_a_taken_port_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(NodeBindError) as caught:
            bind_listener("127.0.0.1", port, "the REST API")
    assert caught.value.code == "node.process.bind"
    assert f"cannot listen for the REST API on 127.0.0.1:{port}" in caught.value.message


def test_ipv6_loopback_listens_when_the_host_has_it() -> None:
    if not socket.has_ipv6:
        pytest.skip("this host has no IPv6")
    try:
        sock = bind_listener("::1", 0, "the test")
    except NodeBindError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc.message}")
    with sock:
        assert sock.family == socket.AF_INET6
        assert sock.proto == socket.IPPROTO_TCP
