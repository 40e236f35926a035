"""A node's own configuration: where its keys and data live, what it listens on, tuning.

One TOML file per node (``node.toml``), read with ``tomllib``. Relative paths are
resolved against the directory holding the file, so a stack directory can move. The
loader is strict: an unknown key or a value of the wrong type is a ``ConfigFieldError``
naming the key, never a traceback. Every error of this package derives from
``ConfigError`` and carries a ``node.config.*`` code.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from charter.errors import CharterError

NODE_CONFIG_VERSION: Final = 1
MAX_CONFIG_BYTES: Final = 1 << 20
NAME_PATTERN: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
"""Stack, member and node names: a lowercase DNS label, so never a path or option."""

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")

DEFAULT_TICK_MS: Final = 50
DEFAULT_ELECTION_TICKS: Final = 10
DEFAULT_HEARTBEAT_TICKS: Final = 1
DEFAULT_SIGNATURE_INTERVAL_TX: Final = 1000
DEFAULT_SIGNATURE_INTERVAL_MS: Final = 1000


class ConfigError(CharterError):
    """A configuration (node config, network file or stack) cannot be used."""

    code = "node.config"


class ConfigReadError(ConfigError):
    """The file is missing, unreadable, too large, or not JSON/TOML at all."""

    code = "node.config.read"


class ConfigVersionError(ConfigError):
    """The file declares a format version this Charter does not read."""

    code = "node.config.version"


class ConfigFieldError(ConfigError):
    """One field is missing, unknown, of the wrong type or out of range."""

    code = "node.config.field"


class ConfigConsistencyError(ConfigError):
    """Fields are each valid but contradict each other (duplicates, mismatched ids)."""

    code = "node.config.consistency"


class ConfigAttestationError(ConfigError):
    """A node's attestation chain does not vouch for its key on behalf of its member."""

    code = "node.config.attestation"


class StackError(ConfigError):
    """A local stack cannot be created or found."""

    code = "node.config.stack"


def check_name(value: object, where: str) -> str:
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        raise ConfigFieldError(
            f"{where}: {value!r} is not a valid name (1-63 of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit)"
        )
    return value


def check_port(value: object, where: str, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if type(value) is not int or not low <= value <= 65535:
        raise ConfigFieldError(f"{where}: port must be an integer in {low}..65535, got {value!r}")
    return value


def check_host(value: object, where: str) -> str:
    """A host name or IP literal; no scheme, port, path or whitespace."""
    if not isinstance(value, str) or not value:
        raise ConfigFieldError(f"{where}: host must be a non-empty string")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if len(value) > 253 or _HOST_NAME.fullmatch(value) is None:
            raise ConfigFieldError(f"{where}: {value!r} is not a host name or IP address") from None
    return value


class Fields:
    """Reads one table/object strictly: each key taken once, leftovers are an error."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, Mapping):
            raise ConfigFieldError(f"{where or 'document'}: expected an object/table")
        self._data: dict[str, Any] = dict(value)
        self._where = where
        self._seen: set[str] = set()

    def path(self, key: str) -> str:
        # A key from the file is shown quoted unless plain, so a message stays one line.
        shown = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else repr(key)
        return f"{self._where}.{shown}" if self._where else shown

    def _get(self, key: str, default: object, required: bool) -> object:
        self._seen.add(key)
        if key not in self._data:
            if required:
                raise ConfigFieldError(f"{self.path(key)}: required field is missing")
            return default
        return self._data[key]

    def raw(self, key: str, *, required: bool = True, default: object = None) -> object:
        return self._get(key, default, required)

    def string(self, key: str, *, required: bool = True, default: str = "") -> str:
        value = self._get(key, default, required)
        if not isinstance(value, str) or not value:
            raise ConfigFieldError(f"{self.path(key)}: expected a non-empty string")
        return value

    def integer(
        self, key: str, *, low: int, high: int, required: bool = True, default: int = 0
    ) -> int:
        value = self._get(key, default, required)
        if type(value) is not int or not low <= value <= high:
            raise ConfigFieldError(
                f"{self.path(key)}: expected an integer in {low}..{high}, got {value!r}"
            )
        return value

    def table(self, key: str, *, required: bool = True) -> Fields:
        value = self._get(key, {}, required)
        return Fields(value, self.path(key))

    def array(self, key: str, *, required: bool = True) -> list[Any]:
        value = self._get(key, [], required)
        if not isinstance(value, list):
            raise ConfigFieldError(f"{self.path(key)}: expected an array")
        return value

    def done(self) -> None:
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            raise ConfigFieldError(f"{self.path(unknown[0])}: unknown field")


def read_limited(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigReadError(f"{what} {path} is too large ({size} bytes)")
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigReadError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigReadError(f"{what} {path} is a directory") from None
    except OSError as exc:
        raise ConfigReadError(f"cannot read {what} {path}: {exc.strerror}") from None


@dataclass(frozen=True, slots=True)
class Listen:
    """A host and port to bind; port 0 asks the system for a free one."""

    host: str
    port: int

    def to_toml(self) -> dict[str, object]:
        return {"host": self.host, "port": self.port}


@dataclass(frozen=True, slots=True)
class Tuning:
    """Consensus and ledger timing; ticks are in units of ``tick_ms``."""

    tick_ms: int = DEFAULT_TICK_MS
    election_ticks: int = DEFAULT_ELECTION_TICKS
    heartbeat_ticks: int = DEFAULT_HEARTBEAT_TICKS
    signature_interval_tx: int = DEFAULT_SIGNATURE_INTERVAL_TX
    signature_interval_ms: int = DEFAULT_SIGNATURE_INTERVAL_MS

    def __post_init__(self) -> None:
        if self.heartbeat_ticks >= self.election_ticks:
            raise ConfigConsistencyError(
                f"raft.heartbeat_ticks ({self.heartbeat_ticks}) must be below "
                f"raft.election_ticks ({self.election_ticks})"
            )

    def to_toml(self) -> dict[str, object]:
        return {
            "tick_ms": self.tick_ms,
            "election_ticks": self.election_ticks,
            "heartbeat_ticks": self.heartbeat_ticks,
            "signature_interval_tx": self.signature_interval_tx,
            "signature_interval_ms": self.signature_interval_ms,
        }


@dataclass(frozen=True, slots=True)
class KeyPaths:
    """The node's secret and public key material on disk (absolute once loaded)."""

    identity: Path
    """Ed25519 node identity key (PKCS#8 PEM, 0600): the OCapN TLS key."""
    ledger: Path
    """P-256 ledger signing key (PKCS#8 PEM, 0600)."""
    ledger_cert: Path
    """Self-signed certificate of the ledger key."""
    attestation: Path
    """Armored attestation chain from the member root to the identity key."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything one node process needs to start, besides the network file's contents."""

    name: str
    member: str
    network_file: Path
    data_dir: Path
    keys: KeyPaths
    ocapn: Listen
    api: Listen
    metrics: Listen | None = None
    tuning: Tuning = field(default_factory=Tuning)
    store_url: str | None = None
    """SQLAlchemy URL of the index database; None: SQLite in ``data_dir``."""

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "node.pid"

    def to_toml(self, base: Path) -> str:
        """TOML text with every path relative to ``base``, so the tree can move."""

        def rel(path: Path) -> str:
            return Path(os.path.relpath(path, base)).as_posix()

        doc: dict[str, object] = {
            "charter_node": NODE_CONFIG_VERSION,
            "name": self.name,
            "member": self.member,
            "network_file": rel(self.network_file),
            "data_dir": rel(self.data_dir),
            "keys": {
                "identity": rel(self.keys.identity),
                "ledger": rel(self.keys.ledger),
                "ledger_cert": rel(self.keys.ledger_cert),
                "attestation": rel(self.keys.attestation),
            },
            "listen": {"ocapn": self.ocapn.to_toml(), "api": self.api.to_toml()},
            "raft": self.tuning.to_toml(),
        }
        if self.store_url is not None:
            doc["store"] = {"url": self.store_url}
        if self.metrics is not None:
            listen = doc["listen"]
            assert isinstance(listen, dict)
            listen["metrics"] = self.metrics.to_toml()
        return dump_toml(doc)

    def save(self, path: Path) -> None:
        path.write_text(self.to_toml(path.parent), encoding="utf-8")


def load_node_config(path: Path | str) -> NodeConfig:
    """Read and check a ``node.toml``; paths come back absolute."""
    source = Path(path).absolute()
    data = read_limited(source, "node config")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigReadError(f"node config {source} is not valid TOML: {exc}") from None
    return parse_node_config(doc, source.parent)


def parse_node_config(doc: Mapping[str, Any], base: Path) -> NodeConfig:
    top = Fields(doc, "")
    version = top.raw("charter_node")
    if type(version) is not int:
        raise ConfigFieldError("charter_node: expected the integer format version")
    if version != NODE_CONFIG_VERSION:
        raise ConfigVersionError(
            f"node config format {version} is not supported (this Charter reads "
            f"{NODE_CONFIG_VERSION})"
        )

    def path_of(fields: Fields, key: str) -> Path:
        p = Path(fields.string(key))
        return p if p.is_absolute() else base / p

    name = check_name(top.raw("name"), "name")
    member = check_name(top.raw("member"), "member")
    network_file = path_of(top, "network_file")
    data_dir = path_of(top, "data_dir")
    k = top.table("keys")
    keys = KeyPaths(
        identity=path_of(k, "identity"),
        ledger=path_of(k, "ledger"),
        ledger_cert=path_of(k, "ledger_cert"),
        attestation=path_of(k, "attestation"),
    )
    k.done()
    listen = top.table("listen")
    ocapn = _listen(listen.table("ocapn"))
    api = _listen(listen.table("api"))
    metrics = _listen(listen.table("metrics")) if "metrics" in doc.get("listen", {}) else None
    listen.done()
    tuning = Tuning()
    if "raft" in doc:
        r = top.table("raft")
        tuning = Tuning(
            tick_ms=r.integer(
                "tick_ms", low=1, high=60_000, required=False, default=DEFAULT_TICK_MS
            ),
            election_ticks=r.integer(
                "election_ticks", low=2, high=10_000, required=False, default=DEFAULT_ELECTION_TICKS
            ),
            heartbeat_ticks=r.integer(
                "heartbeat_ticks",
                low=1,
                high=10_000,
                required=False,
                default=DEFAULT_HEARTBEAT_TICKS,
            ),
            signature_interval_tx=r.integer(
                "signature_interval_tx",
                low=1,
                high=1_000_000,
                required=False,
                default=DEFAULT_SIGNATURE_INTERVAL_TX,
            ),
            signature_interval_ms=r.integer(
                "signature_interval_ms",
                low=1,
                high=3_600_000,
                required=False,
                default=DEFAULT_SIGNATURE_INTERVAL_MS,
            ),
        )
        r.done()
    else:
        top.raw("raft", required=False)
    store_url: str | None = None
    if "store" in doc:
        st = top.table("store")
        store_url = st.string("url")
        if "://" not in store_url:
            raise ConfigFieldError(
                "store.url: expected a database URL such as sqlite+aiosqlite:///"
            )
        st.done()
    top.done()
    bound = [("listen.ocapn", ocapn), ("listen.api", api)]
    if metrics is not None:
        bound.append(("listen.metrics", metrics))
    taken: dict[tuple[str, int], str] = {}
    for where, item in bound:
        key = (item.host, item.port)
        if item.port != 0 and key in taken:
            raise ConfigConsistencyError(
                f"{where} and {taken[key]} both listen on {item.host}:{item.port}"
            )
        taken[key] = where
    return NodeConfig(
        name=name,
        member=member,
        network_file=network_file,
        data_dir=data_dir,
        keys=keys,
        ocapn=ocapn,
        api=api,
        metrics=metrics,
        tuning=tuning,
        store_url=store_url,
    )


def _listen(fields: Fields) -> Listen:
    host = check_host(fields.raw("host"), fields.path("host"))
    port = check_port(fields.raw("port"), fields.path("port"), allow_zero=True)
    fields.done()
    return Listen(host, port)


def dump_toml(doc: Mapping[str, object]) -> str:
    """TOML for the shapes a node config has: scalars, then tables (nested once or twice)."""
    lines: list[str] = []
    _dump_table(doc, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _dump_table(table: Mapping[str, object], prefix: list[str], lines: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if prefix and scalars:
        lines.append("")
        lines.append(f"[{'.'.join(prefix)}]")
    for key, value in scalars:
        lines.append(f"{key} = {_toml_value(value)}")
    for key, value in tables:
        assert isinstance(value, Mapping)
        _dump_table(value, [*prefix, key], lines)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        if any(ord(c) < 0x20 for c in escaped):
            raise ConfigFieldError(f"cannot write control characters in TOML: {value!r}")
        return f'"{escaped}"'
    raise ConfigFieldError(f"cannot write {type(value).__name__} as TOML")
