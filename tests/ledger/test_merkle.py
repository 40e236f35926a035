"""The Merkle tree against a direct recursive definition, and its proofs' properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.ledger.errors import LedgerIndexError
from charter.ledger.merkle import (
    GENESIS_LEAF,
    MerkleError,
    MerkleTree,
    PathStep,
    commit_evidence,
    fold_path,
    leaf_hash,
    parse_commit_evidence,
    verify_path,
)


def reference_root(leaves: list[bytes]) -> bytes:
    """CCF's tree: split at the largest power of two below n, plain sha256(l || r)."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


def leaves_of(n: int, salt: int = 0) -> list[bytes]:
    return [hashlib.sha256(f"{salt}:{i}".encode()).digest() for i in range(n)]


sizes = st.integers(min_value=1, max_value=300)


@given(sizes)
def test_root_matches_reference_at_every_size(n: int) -> None:
    leaves = leaves_of(n)
    tree = MerkleTree()
    for i, leaf in enumerate(leaves):
        assert tree.append(leaf) == i
    assert tree.root() == reference_root(leaves)
    for size in {1, n // 2 or 1, n}:
        assert tree.root_at(size) == reference_root(leaves[:size])


@given(sizes, st.data())
def test_every_path_folds_to_the_root_at_its_size(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    tree = MerkleTree(leaves)
    size = data.draw(st.integers(min_value=1, max_value=n))
    root = tree.root_at(size)
    for index in range(size):
        path = tree.path(index, size)
        assert verify_path(leaves[index], path, root)
        assert len(path) <= (size - 1).bit_length()


@given(st.integers(min_value=2, max_value=200), st.data())
def test_proof_for_another_leaf_or_a_flipped_bit_fails(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    tree = MerkleTree(leaves)
    root = tree.root()
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    other = data.draw(st.integers(min_value=0, max_value=n - 1).filter(lambda i: i != index))
    path = tree.path(index)
    assert not verify_path(leaves[other], path, root)
    step = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    flipped = bytearray(path[step].digest)
    flipped[bit // 8] ^= 1 << (bit % 8)
    bad = list(path)
    bad[step] = PathStep(path[step].left, bytes(flipped))
    assert not verify_path(leaves[index], bad, root)
    swapped = list(path)
    swapped[step] = PathStep(not path[step].left, path[step].digest)
    assert not verify_path(leaves[index], swapped, root)
    leaf = bytearray(leaves[index])
    leaf[bit // 8] ^= 1 << (bit % 8)
    assert not verify_path(bytes(leaf), path, root)


@settings(max_examples=60)
@given(sizes, st.data())
def test_retract_equals_a_fresh_tree(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    tree = MerkleTree(leaves)
    keep = data.draw(st.integers(min_value=1, max_value=n))
    tree.retract(keep)
    fresh = MerkleTree(leaves[:keep])
    assert len(tree) == keep
    assert tree.root() == fresh.root()
    for index in range(0, keep, max(1, keep // 7)):
        assert tree.path(index) == fresh.path(index)
    # Appending after a retraction continues as if the dropped leaves never were.
    extra = leaves_of(data.draw(st.integers(min_value=0, max_value=40)), salt=1)
    tree.extend(extra)
    fresh.extend(extra)
    assert tree.root() == fresh.root() == reference_root(leaves[:keep] + extra)


def test_retract_to_zero_and_rebuild() -> None:
    tree = MerkleTree(leaves_of(33))
    tree.retract(0)
    assert len(tree) == 0
    with pytest.raises(MerkleError):
        tree.root()
    tree.extend(leaves_of(5))
    assert tree.root() == reference_root(leaves_of(5))


def test_large_tree_paths_use_stored_levels() -> None:
    leaves = leaves_of(5000)
    tree = MerkleTree(leaves)
    root = reference_root(leaves)
    assert tree.root() == root
    for index in (0, 1, 15, 16, 255, 256, 4095, 4096, 4999):
        assert fold_path(leaves[index], tree.path(index)) == root
    assert tree.leaf(4096) == leaves[4096]


def test_ccf_proof_shape_for_the_last_transaction_before_a_signature() -> None:
    # CCF's published receipt for 2.500 (signature at 501, tree of leaves 0..500 with
    # the zero hash at leaf 0) has six proof elements, all on the left.
    tree = MerkleTree([GENESIS_LEAF, *leaves_of(500)])
    path = tree.path(500, 501)
    assert len(path) == 6
    assert all(step.left for step in path)


def test_index_errors() -> None:
    tree = MerkleTree(leaves_of(4))
    with pytest.raises(LedgerIndexError):
        tree.path(4)
    with pytest.raises(LedgerIndexError):
        tree.path(3, 3)
    with pytest.raises(LedgerIndexError):
        tree.root_at(5)
    with pytest.raises(MerkleError):
        tree.append(b"short")


def test_leaf_hash_is_ccfs_concatenation() -> None:
    wsd, cd = bytes(range(32)), bytes(32)
    ce = "ce:2.643:" + "ab" * 32
    inner = hashlib.sha256(ce.encode()).digest()
    assert leaf_hash(wsd, ce, cd) == hashlib.sha256(wsd + inner + cd).digest()


def test_commit_evidence_round_trip() -> None:
    text = commit_evidence(3, 42, bytes(range(32)))
    assert text == "ce:3.42:" + bytes(range(32)).hex()
    assert parse_commit_evidence(text) == (3, 42, bytes(range(32)))
    for bad in ("ce:3.42", "ce:3:42:00", "ce:3.42:0g", "CE:3.42:00", "ce:3.42:abc"):
        with pytest.raises(MerkleError):
            parse_commit_evidence(bad)


@settings(max_examples=60)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_flushed_tree_answers_like_the_full_tree(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    full = MerkleTree(leaves)
    flushed = MerkleTree(leaves)
    cut = data.draw(st.integers(min_value=0, max_value=n))
    flushed.flush(cut)
    assert flushed.min_index == cut and len(flushed) == n
    assert flushed.root() == full.root()
    for size in range(max(cut, 1), n + 1, max(1, n // 9)):
        assert flushed.root_at(size) == full.root_at(size)
        for index in range(cut, size, max(1, size // 5)):
            assert flushed.path(index, size) == full.path(index, size)
    if cut > 0:
        with pytest.raises((LedgerIndexError, MerkleError)):
            flushed.path(cut - 1)
    extra = leaves_of(data.draw(st.integers(min_value=0, max_value=40)), salt=2)
    full.extend(extra)
    flushed.extend(extra)
    assert flushed.root() == full.root()
    keep = data.draw(st.integers(min_value=cut, max_value=len(full)))
    full.retract(keep)
    flushed.retract(keep)
    if keep:
        assert flushed.root() == full.root()
    for index in range(cut, keep, max(1, keep // 5)):
        assert flushed.path(index) == full.path(index)


@settings(max_examples=60)
@given(st.integers(min_value=1, max_value=300), st.integers(min_value=0, max_value=60))
def test_a_tree_from_its_frontier_continues_the_same_roots(n: int, more: int) -> None:
    leaves = leaves_of(n)
    full = MerkleTree(leaves)
    frontier = full.frontier()
    assert len(frontier) == bin(n).count("1")
    resumed = MerkleTree.from_frontier(n, frontier)
    assert resumed.root() == full.root() and resumed.min_index == n
    extra = leaves_of(more, salt=3)
    full.extend(extra)
    resumed.extend(extra)
    assert resumed.root() == full.root()
    for index in range(n, n + more):
        assert resumed.path(index) == full.path(index)
        assert resumed.leaf(index) == full.leaf(index)
    with pytest.raises(MerkleError):
        MerkleTree.from_frontier(n, frontier[:-1])


def test_flush_keeps_memory_to_the_left_edge() -> None:
    tree = MerkleTree(leaves_of(10_000))
    tree.flush(9_990)
    assert len(tree._levels[0]) == 10 * 32
    assert sum(len(level) for level in tree._levels) < 40 * 32
    assert fold_path(tree.leaf(9_995), tree.path(9_995)) == reference_root(leaves_of(10_000))
