"""Whatever a network file or node config holds, loading ends in a result or a ConfigError."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.node.config import ConfigError, parse_node_config
from charter.node.network import parse_network

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


def _replace(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return doc


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_network_mutations(sample: Any, data: st.DataObject) -> None:
    doc = sample.doc()
    path = data.draw(st.sampled_from(_paths(doc)))
    doc = _replace(doc, path, data.draw(JSON))
    try:
        parse_network(doc)
    except ConfigError as exc:
        assert "\n" not in exc.message and exc.code.startswith("node.config")


NODE_TOML = """\
charter_node = 1
name = "n"
member = "m"
network_file = "network.json"
data_dir = "data"
[keys]
identity = "i.pem"
ledger = "l.pem"
ledger_cert = "l.crt"
attestation = "c"
[listen.ocapn]
host = "127.0.0.1"
port = 1
[listen.api]
host = "127.0.0.1"
port = 2
[raft]
tick_ms = 10
"""


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_node_config_mutations(data: st.DataObject) -> None:
    doc = tomllib.loads(NODE_TOML)
    path = data.draw(st.sampled_from(_paths(doc)))
    doc = _replace(doc, path, data.draw(JSON))
    try:
        parse_node_config(doc, Path("/base"))
    except ConfigError as exc:
        assert "\n" not in exc.message and exc.code.startswith("node.config")
