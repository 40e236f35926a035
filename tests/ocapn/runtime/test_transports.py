"""The runtime over real sockets in one process: Unix domain sockets and TLS on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.codec.syrup import Symbol
from charter.ocapn.netlayer.base import Netlayer
from charter.ocapn.netlayer.tls import TlsNetlayer
from charter.ocapn.netlayer.unix import UnixNetlayer
from charter.ocapn.runtime import PromiseBrokenError, Runtime

S = Symbol


def car_factory_builder() -> Any:
    def factory(spec: Any) -> Any:
        color, model = spec
        return lambda: f"Vroom! I am a {color.name} {model.name} car!"

    return factory


@pytest.fixture(params=["unix", "tls"])
async def runtimes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[str], Runtime]]:
    made: list[Runtime] = []

    def netlayer(name: str) -> Netlayer:
        if request.param == "unix":
            return UnixNetlayer(str(tmp_path / f"{name}.sock"))
        return TlsNetlayer(Ed25519PrivateKey.generate(), "127.0.0.1", 0)

    def make(name: str) -> Runtime:
        rt = Runtime([netlayer(name)])
        made.append(rt)
        return rt

    yield make
    for rt in made:
        await rt.close()


async def test_calls_pipelining_and_handoff(runtimes: Callable[[str], Runtime]) -> None:
    a, b, c = runtimes("alice"), runtimes("bob"), runtimes("carol")
    for rt in (a, b, c):
        await rt.start()
    builder = await a.enliven(b.register(car_factory_builder))
    noise = builder.send().send([S("red"), S("zoomracer")]).send()
    assert await noise == "Vroom! I am a red zoomracer car!"
    with pytest.raises(PromiseBrokenError):
        await builder.send().send([1, 2, 3, 4, 5])

    carol = await a.enliven(c.register(lambda text: f"carol: {text}"))

    async def bob(ref: Any) -> Any:
        return await (await ref)("from bob")

    bob_ref = await a.enliven(b.register(bob))
    assert await bob_ref(carol) == "carol: from bob"
