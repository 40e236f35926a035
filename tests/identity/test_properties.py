"""Property checks: arbitrary input meets only typed errors; round trips hold."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.crypto import Ed25519PrivateKey
from charter.identity import (
    DEVICE,
    NODE,
    AttestationChain,
    AttestationError,
    IdentityError,
    attest,
    derive_ed25519,
    parse_path,
    verify_chain,
)
from charter.identity.slip10 import HARDENED_OFFSET, format_path

NOW = 1_800_000_000
ROOT = Ed25519PrivateKey.from_raw(bytes(range(32)))
DEVICE_KEY = Ed25519PrivateKey.from_raw(bytes(range(1, 33)))
NODE_KEY = Ed25519PrivateKey.from_raw(bytes(range(2, 34)))
CHAIN = attest(ROOT, DEVICE_KEY.public_key, DEVICE, 9, now=NOW).extend(
    DEVICE_KEY, NODE_KEY.public_key, NODE, now=NOW
)
CHAIN_BYTES = CHAIN.to_bytes()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700))
def test_arbitrary_bytes_are_refused_with_typed_errors(data: bytes) -> None:
    with pytest.raises(AttestationError):
        verify_chain(AttestationChain.load(data), now=NOW)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(CHAIN_BYTES) - 1),
    st.integers(min_value=1, max_value=16),
    st.binary(min_size=1, max_size=16),
)
def test_splices_are_refused(start: int, length: int, replacement: bytes) -> None:
    tampered = CHAIN_BYTES[:start] + replacement + CHAIN_BYTES[start + length :]
    if tampered == CHAIN_BYTES:
        return
    with pytest.raises(AttestationError):
        verify_chain(AttestationChain.load(tampered), now=NOW)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=HARDENED_OFFSET - 1), max_size=6))
def test_path_format_round_trip(steps: list[int]) -> None:
    indices = tuple(i + HARDENED_OFFSET for i in steps)
    assert parse_path(format_path(indices)) == indices


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_arbitrary_paths_parse_or_fail_typed(path: str) -> None:
    try:
        key = derive_ed25519(b"\x00" * 32, path)
    except IdentityError:
        return
    assert len(key) == 32
    assert format_path(parse_path(path)) == path.strip().replace("h", "'").replace("H", "'")


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2**63 - 1), st.sampled_from([DEVICE, NODE]))
def test_chain_round_trip(epoch: int, purpose: str) -> None:
    chain = attest(ROOT, NODE_KEY.public_key, purpose, epoch, now=NOW)
    again = AttestationChain.load(chain.to_bytes())
    assert again == chain
    result = verify_chain(again, now=NOW)
    assert (result.epoch, result.purposes) == (epoch, (purpose,))
