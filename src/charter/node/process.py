"""One node process: everything ``charter node run`` assembles from a ``node.toml``.

The order of assembly is the order of refusal: the config, network file and keys are
checked first (a defect is a ``ConfigError`` before anything is opened); then the Raft
storage is opened, which takes its directory's lock, so a second process on the same data
directory stops here with ``ledger.state`` before it binds a port; then the sockets are
bound (a port in use is ``node.process.bind``), the pid file is written, and the OCapN
runtime, the ledger service and the REST server run side by side under one TaskGroup.

SIGTERM and SIGINT end the node cleanly: the REST server stops accepting and finishes its
requests, the ledger service is cancelled (its waiters get ``NotAvailable``), the runtime
closes its sessions and the storage releases its lock; the pid file goes last. Each step
is bounded (``SHUTDOWN_TIMEOUT``), so a stuck step cannot keep the process alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import random
import signal
import socket
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from charter import __version__
from charter.api import NodeInfo, create_app
from charter.crypto.certs import certificate_from_pem, load_certificate
from charter.errors import CharterError
from charter.ledger.raft_storage import DurableRaftStorage
from charter.ledger.signatures import SignaturePolicy
from charter.node.components import Component, NodeContext, assemble, merged_handlers
from charter.node.config import NodeConfig, load_node_config
from charter.node.join import bootstrap_conf, ledger_view, load_keys
from charter.node.ledger_service import LedgerMember, LedgerNetwork, LedgerService, LedgerSettings
from charter.node.membership import COMPONENT_NAME as MEMBERSHIP
from charter.node.membership import Admission
from charter.node.network import Network, NodeKeys, load_network
from charter.ocapn.netlayer.tls import TlsNetlayer
from charter.ocapn.runtime import Runtime
from charter.ops import NodeMetrics, configure_logging
from charter.ops.events import watch_ledger

__all__ = [
    "SHUTDOWN_TIMEOUT",
    "NodeBindError",
    "NodeProcessError",
    "NodeSetup",
    "bind_listener",
    "load_setup",
    "network_secret",
    "run_node",
]

log = structlog.get_logger("charter.node.process")

SHUTDOWN_TIMEOUT: Final = 5.0
"""Seconds each shutdown step may take before it is abandoned."""
RAFT_DIR: Final = "raft"
_SECRET_TAG: Final = b"charter/network-secret/v1\x00"


class NodeProcessError(CharterError):
    code = "node.process"


class NodeBindError(NodeProcessError):
    code = "node.process.bind"


def network_secret(network: Network) -> bytes:
    """The commit-evidence secret every node of the network derives the same way.

    The network file carries public material only, so this is derived from the network id:
    it keeps every node's evidence nonces equal, but anyone holding the network file can
    compute it (a secret distributed with the network is future work).
    """
    return hashlib.sha256(_SECRET_TAG + network.network_id).digest()


def ledger_network(network: Network) -> LedgerNetwork:
    """The ledger's view of the network file: Raft peers and per node its keys."""
    members = {
        n.raft_id: LedgerMember(
            n.name, n.identity, certificate_from_pem(n.cert.pem().encode("ascii")), n.member
        )
        for n in network.nodes
    }
    return LedgerNetwork(network.raft_config(), network_secret(network), members)


def ledger_settings(
    config: NodeConfig, *, observe_batch_size: Callable[[int], None] | None = None
) -> LedgerSettings:
    t = config.tuning
    return LedgerSettings(
        signature_policy=SignaturePolicy(
            every_tx=t.signature_interval_tx, every_ms=t.signature_interval_ms
        ),
        tick_interval=t.tick_ms / 1000,
        election_ticks=t.election_ticks,
        heartbeat_ticks=t.heartbeat_ticks,
        observe_batch_size=observe_batch_size,
    )


@dataclass(frozen=True, slots=True)
class NodeSetup:
    """A checked config with the network file and keys it names."""

    config_path: Path
    config: NodeConfig
    network: Network
    keys: NodeKeys

    @property
    def api_url(self) -> str:
        return f"http://{self.config.api.host}:{self.config.api.port}"


def load_setup(config_path: Path | str) -> NodeSetup:
    """Load and cross-check everything the node reads before it opens anything."""
    path = Path(config_path).absolute()
    config = load_node_config(path)
    network = load_network(config.network_file)
    keys = load_keys(config, network)  # a joined node: its own files and join.json
    return NodeSetup(path, config, network, keys)


def bind_listener(host: str, port: int, what: str) -> socket.socket:
    """A listening TCP socket whose accepted connections asyncio will set TCP_NODELAY on.

    asyncio sets TCP_NODELAY only on sockets whose ``proto`` is ``IPPROTO_TCP``, and an
    accepted socket inherits the listener's. ``socket.create_server`` makes ``proto`` 0,
    so every HTTP answer written in two parts (head, then body) waited for the client's
    delayed ACK: about 40 ms per request on a kept-alive connection.
    """
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(512)
        except BaseException:
            sock.close()
            raise
        return sock
    except OSError as exc:
        raise NodeBindError(f"cannot listen for {what} on {host}:{port}: {exc.strerror}") from None


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the node owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _write_pid(path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n", encoding="ascii")
    tmp.replace(path)


def _remove_pid(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.read_text(encoding="ascii").strip() == str(os.getpid()):
            path.unlink()


GC_THRESHOLDS = (50_000, 20, 10)


def _tune_gc() -> None:
    """Fewer, cheaper collections: the modules, keys and configuration loaded at start-up
    live as long as the process (frozen, never scanned again), and a node allocates
    many short-lived objects per transaction, most freed by reference counting."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run_node(config_path: Path | str, *, log_level: str = "info") -> None:
    """Run one node until SIGTERM or SIGINT (or until a part of it fails)."""
    setup = load_setup(config_path)
    _tune_gc()
    config, network, keys = setup.config, setup.network, setup.keys
    entry = keys.entry
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    raft_dir = config.data_dir / RAFT_DIR
    raft_dir.mkdir(mode=0o700, exist_ok=True)
    # The storage lock refuses a second process on this data directory, and opening
    # checks every record (a tampered one is ``ledger.corrupt``): both before the node
    # logs anything, so the refusal is the one line on stderr.
    # NodeMetrics' storage is a DurableRaftStorage whose persist feeds the fsync histogram.
    metrics = NodeMetrics()
    storage = metrics.durable_storage(raft_dir, bootstrap=bootstrap_conf(network, entry))
    configure_logging(json=True, level=log_level, node=config.name)
    recovery = storage.recovery
    torn = recovery.log.torn_tail
    log.info(
        "node.storage_opened",
        directory=str(raft_dir),
        created=recovery.created,
        entries=recovery.log.entries,
        last_index=recovery.log.last_index,
        torn_tail=None if torn is None else repr(torn),
        removed=list(recovery.removed),
    )
    try:
        await _serve(setup, storage, metrics)
    except BaseExceptionGroup as group:
        # A part of the node failed: surface its typed error, not the group.
        typed = group.subgroup(CharterError)
        if typed is not None:
            raise _first(typed) from None
        raise
    finally:
        storage.close()
        log.info("node.stopped", raft_id=entry.raft_id)


def _first(group: BaseExceptionGroup[CharterError]) -> CharterError:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
        return exc
    raise AssertionError("an exception group is never empty")


async def _serve(setup: NodeSetup, storage: DurableRaftStorage, metrics: NodeMetrics) -> None:
    config, keys = setup.config, setup.keys
    entry = keys.entry
    # the network file's node keys, then whichever the ledger trusts (membership watcher)
    admission = Admission(n.designator for n in setup.network.nodes)
    api_sock = bind_listener(config.api.host, config.api.port, "the REST API")
    with contextlib.ExitStack() as sockets:
        sockets.callback(api_sock.close)
        metrics_sock: socket.socket | None = None
        if config.metrics is not None:
            metrics_sock = bind_listener(config.metrics.host, config.metrics.port, "metrics")
            sockets.callback(metrics_sock.close)
        pid_file = config.pid_file
        _write_pid(pid_file)
        sockets.callback(_remove_pid, pid_file)
        netlayer = TlsNetlayer(
            keys.identity.to_cryptography(),
            config.ocapn.host,
            config.ocapn.port,
            allow=admission,
        )
        runtime = Runtime([netlayer])
        try:
            await runtime.start()
        except OSError as exc:
            raise NodeBindError(
                f"cannot listen for OCapN on {config.ocapn.host}:{config.ocapn.port}: "
                f"{exc.strerror}"
            ) from None
        ctx = NodeContext(
            name=config.name,
            member=config.member,
            raft_id=entry.raft_id,
            runtime=runtime,
            identity=keys.identity,
            data_dir=config.data_dir,
            network=setup.network,
            store_url=config.store_url,
            settings={MEMBERSHIP: {"admission": admission}},
        )
        try:
            components = assemble(ctx)
            service = LedgerService(
                runtime,
                ledger_network(ledger_view(setup.network, entry)),
                entry.raft_id,
                batch_key=keys.identity,
                ledger_key=keys.ledger,
                ledger_cert=load_certificate(config.keys.ledger_cert),
                storage=storage,
                rng=random.Random(int.from_bytes(os.urandom(8), "big")),
                settings=ledger_settings(config, observe_batch_size=metrics.observe_batch_size),
                handlers=merged_handlers(components),
            )
            for component in components:
                component.bind(service)
            metrics.bind(service)
            info = NodeInfo(
                name=config.name,
                member=config.member,
                node_id=entry.node_id,
                raft_id=entry.raft_id,
                api_url=entry.api_url,
                version=__version__,
            )
            routers = [r for c in components for r in c.routers()]
            app = create_app(service, info, metrics, routers=routers)
            server = _server(app)
            servers = [(server, api_sock)]
            if metrics_sock is not None:
                servers.append((_server(metrics_app(metrics)), metrics_sock))
            try:
                await _run_until_signal(service, servers, components)
            finally:
                for component in reversed(components):
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                            await component.close()
        finally:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await runtime.close()


def _server(app: Starlette) -> _Server:
    return _Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            http="httptools",  # a C parser: about 80 us less CPU per request than h11
            lifespan="off",
            timeout_graceful_shutdown=int(SHUTDOWN_TIMEOUT),
        )
    )


def metrics_app(metrics: NodeMetrics) -> Starlette:
    """``/metrics`` alone, for the metrics listener (Prometheus scrapes it apart from the
    API, so a firewall can open one and not the other)."""

    async def scrape(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape)])


async def _run_until_signal(
    service: LedgerService,
    servers: list[tuple[_Server, socket.socket]],
    components: Sequence[Component] = (),
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as tg:
            service_task = tg.create_task(service.run(), name="ledger-service")
            # the documented state-change events (raft.leader_changed, ledger.signature, ...)
            watcher = tg.create_task(watch_ledger(service), name="ledger-events")
            parts = [tg.create_task(c.run(), name=f"component-{c.name}") for c in components]
            server_tasks = [
                tg.create_task(server.serve(sockets=[sock]), name=f"http-{i}")
                for i, (server, sock) in enumerate(servers)
            ]
            log.info("node.started", listen=[str(sock.getsockname()) for _, sock in servers])
            stopper = tg.create_task(stop.wait(), name="signals")
            done, _ = await asyncio.wait(
                {service_task, stopper, *server_tasks}, return_when=asyncio.FIRST_COMPLETED
            )
            log.info("node.stopping", signal=stopper in done)
            # Stop accepting and drain requests first, then stop the service.
            for server, _ in servers:
                server.should_exit = True
            try:
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await asyncio.wait(server_tasks)
            except TimeoutError:
                for (server, _), task in zip(servers, server_tasks, strict=True):
                    server.force_exit = True
                    task.cancel()
            service_task.cancel()
            for part in parts:
                part.cancel()
            watcher.cancel()
            stopper.cancel()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
