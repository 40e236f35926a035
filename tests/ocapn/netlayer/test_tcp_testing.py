"""tcp-testing-only: loopback only unless forced."""

from __future__ import annotations

import pytest

from charter.ocapn.netlayer.base import NetlayerError
from charter.ocapn.netlayer.tcp_testing import (
    NonLoopbackAddressError,
    TcpTestingNetlayer,
    is_loopback,
)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("example.org", False),
        ("::", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_listening_on_non_loopback_refused_unless_forced() -> None:
    with pytest.raises(NonLoopbackAddressError) as info:
        TcpTestingNetlayer("0.0.0.0")
    assert info.value.code == "ocapn.netlayer.tcp_testing.non_loopback"
    forced = TcpTestingNetlayer("0.0.0.0", force=True)
    assert forced.hints["host"] == "0.0.0.0"


async def test_dialling_non_loopback_refused_unless_forced() -> None:
    netlayer = TcpTestingNetlayer()
    with pytest.raises(NonLoopbackAddressError):
        await netlayer.connect("x", {"host": "10.1.2.3", "port": "9"})
    with pytest.raises(NonLoopbackAddressError):
        await netlayer.connect("x", {"host": "example.org", "port": "9"})


async def test_bad_port_hints() -> None:
    netlayer = TcpTestingNetlayer()
    for port in ["abc", "0", "70000"]:
        with pytest.raises(NetlayerError):
            await netlayer.connect("x", {"host": "127.0.0.1", "port": port})


async def test_hints_carry_the_bound_port() -> None:
    netlayer = TcpTestingNetlayer()

    async def handler(conn: object) -> None:
        return None

    await netlayer.serve(handler)  # type: ignore[arg-type]
    assert netlayer.hints["host"] == "127.0.0.1"
    assert int(netlayer.hints["port"]) == netlayer.port > 0
    await netlayer.close()
