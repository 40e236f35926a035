"""The OCapN conformance peer: the test objects the independent suite fetches, and a runner.

The suite fetches five objects from the bootstrap object by fixed swiss numbers and
checks how each behaves on the wire:

* car factory builder: ``()`` -> a car factory; the factory, given one list
  ``[color, model]`` of symbols, returns a car; anything else breaks the promise;
  the car, ``()`` -> ``"Vroom! I am a <color> <model> car!"``;
* echo: returns its arguments as a list and keeps nothing, so the references it was
  given are released (``op:gc-export``);
* greeter: sends ``"Hello"`` to its argument as an ``op:deliver`` with an answer
  position and a resolver; the runtime sends the gc message for that answer once it
  is fulfilled;
* promise pair: a fresh ``[promise, resolver]``;
* sturdyref enlivener: given an ``<ocapn-sturdyref ...>``, connects to that peer
  (reusing a session), fetches and returns the reference.

``run_test_peer`` serves them on ``tcp-testing-only`` (what the suite dials) or, for
Charter's own multi-process tests and benchmarks, on ``unix`` or ``tls``; it prints
the peer's ``ocapn://`` URI on stdout and runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.codec.syrup import Record, Symbol
from charter.errors import CharterError
from charter.ocapn.framing import FRAMINGS, UNFRAMED
from charter.ocapn.locator import LocatorError, PeerLocation, SturdyRef
from charter.ocapn.netlayer.base import Netlayer
from charter.ocapn.netlayer.tcp_testing import TcpTestingNetlayer
from charter.ocapn.netlayer.tls import TlsNetlayer
from charter.ocapn.netlayer.unix import UnixNetlayer
from charter.ocapn.runtime import Promise, Runtime
from charter.ocapn.runtime.refs import Resolver, send

CAR_FACTORY_BUILDER_SWISS = b"JadQ0++RzsD4M+40uLxTWVaVqM10DcBJ"
ECHO_SWISS = b"IO58l1laTyhcrgDKbEzFOO32MDd6zE5w"
GREETER_SWISS = b"VMDDd1voKWarCe2GvgLbxbVFysNzRPzx"
PROMISE_PAIR_SWISS = b"IokCxYmMj04nos2JN1TDoY1bT8dXh6Lr"
ENLIVENER_SWISS = b"gi02I1qghIwPiKGKleCQAOhpy3ZtYRpB"

NETLAYERS = ("tcp-testing-only", "unix", "tls")


class TestPeerError(CharterError):
    """The test peer was started with options it cannot use."""

    code = "ocapn.testpeer"


class Car:
    """Drives, announcing its colour and model."""

    def __init__(self, color: str, model: str) -> None:
        self.color = color
        self.model = model

    def __call__(self) -> str:
        return f"Vroom! I am a {self.color} {self.model} car!"


def car_factory(spec: Any) -> Car:
    """Builds a car from ``[color-symbol, model-symbol]``; anything else is refused."""
    if (
        not isinstance(spec, list)
        or len(spec) != 2
        or not all(isinstance(part, Symbol) for part in spec)
    ):
        raise TypeError("a car is specified as [color-symbol, model-symbol]")
    color, model = spec
    return Car(color.name, model.name)


def car_factory_builder() -> Callable[[Any], Car]:
    return car_factory


def echo(*args: Any) -> list[Any]:
    return list(args)


def greeter(target: Any) -> None:
    # op:deliver with an answer and a resolver; the runtime releases the answer
    # (op:gc-answer) once the greeted object fulfils it.
    send(target, ("Hello",))


def promise_pair() -> list[Any]:
    promise = Promise()
    return [promise, Resolver(promise)]


class Enlivener:
    """Turns a sturdyref record into a live reference through this peer's runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def __call__(self, sturdyref: Any) -> Any:
        if isinstance(sturdyref, Record):
            try:
                sturdyref = SturdyRef.from_record(sturdyref)
            except LocatorError as exc:
                raise TypeError(f"not a sturdyref: {exc.message}") from exc
        if not isinstance(sturdyref, SturdyRef):
            raise TypeError("the enlivener takes an <ocapn-sturdyref ...> record")
        return await self._runtime.enliven(sturdyref)


def register_test_objects(runtime: Runtime) -> dict[bytes, Any]:
    """Export the five conformance objects at their fixed swiss numbers."""
    objects: dict[bytes, Any] = {
        CAR_FACTORY_BUILDER_SWISS: car_factory_builder,
        ECHO_SWISS: echo,
        GREETER_SWISS: greeter,
        PROMISE_PAIR_SWISS: promise_pair,
        ENLIVENER_SWISS: Enlivener(runtime),
    }
    for swiss, obj in objects.items():
        runtime.register(obj, swiss)
    return objects


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a host and a port number."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise TestPeerError(f"--listen takes HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port_text)


def make_netlayer(
    netlayer: str, listen: str, socket_path: str | None = None, *, force: bool = False
) -> Netlayer:
    """The netlayer a test peer listens on."""
    if netlayer == "tcp-testing-only":
        host, port = parse_listen(listen)
        return TcpTestingNetlayer(host, port, force=force)
    if netlayer == "tls":
        host, port = parse_listen(listen)
        return TlsNetlayer(Ed25519PrivateKey.generate(), host, port)
    if netlayer == "unix":
        if socket_path is None:
            raise TestPeerError("the unix netlayer needs a socket path")
        return UnixNetlayer(socket_path)
    raise TestPeerError(f"unknown netlayer {netlayer!r}; expected one of {', '.join(NETLAYERS)}")


def serve_test_peer(
    netlayer: str = "tcp-testing-only",
    listen: str = "127.0.0.1:0",
    *,
    framing: str = UNFRAMED,
    socket_path: str | None = None,
    force: bool = False,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run a test peer to completion (blocking); a unix socket defaults to a temporary path."""
    with tempfile.TemporaryDirectory(prefix="charter-ocapn-") as tmp:
        path = socket_path or os.path.join(tmp, "peer.sock")
        layer = make_netlayer(netlayer, listen, path, force=force)
        asyncio.run(run_test_peer(layer, framing=framing, announce=announce))


async def run_test_peer(
    netlayer: Netlayer,
    *,
    framing: str = UNFRAMED,
    announce: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the test objects until ``stop`` is set or SIGINT/SIGTERM arrives."""
    if framing not in FRAMINGS:
        raise TestPeerError(f"unknown framing {framing!r}; expected one of {', '.join(FRAMINGS)}")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        async with Runtime([netlayer], framing=framing) as runtime:
            register_test_objects(runtime)
            location = PeerLocation(netlayer.designator, netlayer.name, netlayer.hints or None)
            if announce is not None:
                announce(location.to_uri())
            await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _print_flush(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m charter.ocapn.testpeer``: the same as ``charter ocapn test-peer``."""
    parser = argparse.ArgumentParser(description="Run the OCapN conformance test peer.")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--framing", choices=FRAMINGS, default=UNFRAMED)
    parser.add_argument("--netlayer", choices=NETLAYERS, default="tcp-testing-only")
    parser.add_argument("--socket", default=None, help="socket path for the unix netlayer")
    parser.add_argument("--force", action="store_true", help="tcp-testing-only off loopback")
    args = parser.parse_args(argv)
    try:
        serve_test_peer(
            args.netlayer,
            args.listen,
            framing=args.framing,
            socket_path=args.socket,
            force=args.force,
            announce=_print_flush,
        )
    except CharterError as exc:
        print(f"error [{exc.code}] {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
