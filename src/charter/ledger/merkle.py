"""The ledger's append-only SHA-256 Merkle tree, shaped as CCF's history tree.

The shape is the left-full binary tree of RFC 6962 (split at the largest power
of two below the size), which is also what CCF's merklecpp builds by pairing
nodes level by level and promoting an odd last node. Unlike RFC 6962 there are
no domain-separation prefixes: an interior node is ``sha256(left || right)`` and
a leaf is the 32-byte leaf hash itself, exactly as CCF's receipt verifiers fold
a proof. Following CCF, the ledger puts a zero hash at leaf 0 so that leaf ``i``
is the transaction with sequence number ``i`` (see ``GENESIS_LEAF``).

Memory stays linear and small: the leaves, plus the complete subtree hashes at
every fourth level (about 1/15 of the leaf count), plus the O(log n) peaks of
the current size. Any other subtree hash is recomputed from the nearest stored
level below it with at most 15 hashes, so a path costs O(log^2 n) hashes.

The tree is a pure data structure (sans I/O): the node appends leaves as it
applies transactions, ``retract``s when Raft truncates an uncommitted suffix,
and asks for ``root_at`` / ``path`` at the size a signature transaction signed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from charter.ledger.errors import LedgerError, LedgerIndexError

HASH_SIZE = 32
GENESIS_LEAF = bytes(HASH_SIZE)
_STRIDE = 4  # levels 0, 4, 8, ... are stored
_COMMIT_EVIDENCE = re.compile(r"^ce:(\d+)\.(\d+):([0-9a-f]+)$")


class MerkleError(LedgerError):
    code = "ledger.merkle"


class PathStep(NamedTuple):
    """One proof element: ``left`` is True when ``digest`` joins on the left."""

    left: bool
    digest: bytes


def _h(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(left + right).digest()


def leaf_hash(write_set_digest: bytes, commit_evidence: str, claims_digest: bytes) -> bytes:
    """CCF's leaf: ``sha256(write_set_digest || sha256(commit_evidence) || claims_digest)``."""
    if len(write_set_digest) != HASH_SIZE or len(claims_digest) != HASH_SIZE:
        raise MerkleError("write-set and claims digests are 32 bytes each")
    ce = hashlib.sha256(commit_evidence.encode("utf-8")).digest()
    return hashlib.sha256(write_set_digest + ce + claims_digest).digest()


def commit_evidence(view: int, seqno: int, nonce: bytes) -> str:
    """CCF's commit evidence string ``ce:{view}.{seqno}:{hex nonce}``."""
    if view < 0 or seqno < 0:
        raise MerkleError("view and seqno are non-negative")
    return f"ce:{view}.{seqno}:{nonce.hex()}"


def parse_commit_evidence(text: str) -> tuple[int, int, bytes]:
    """(view, seqno, nonce) of a commit evidence string; MerkleError if malformed."""
    m = _COMMIT_EVIDENCE.match(text)
    if m is None or len(m.group(3)) % 2:
        raise MerkleError(f"not a commit evidence string: {text[:40]!r}")
    return int(m.group(1)), int(m.group(2)), bytes.fromhex(m.group(3))


def fold_path(leaf: bytes, path: Iterable[PathStep]) -> bytes:
    """The root that ``path`` leads to from ``leaf``."""
    acc = leaf
    for left, digest in path:
        acc = _h(digest, acc) if left else _h(acc, digest)
    return acc


def _largest_power_of_two_below(n: int) -> int:
    """Largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """Append-only tree over 32-byte leaf hashes.

    ``flush(index)`` forgets the leaves below ``index`` (keeping only the O(log n)
    subtree hashes on the left edge, as CCF's ``flush_to`` does): roots, appends
    and paths for leaves at or above ``min_index`` still work. ``frontier()`` and
    ``from_frontier`` carry a tree's state in O(log n) hashes, e.g. in a snapshot,
    so that a node starting from it continues the same roots.
    """

    __slots__ = ("_base", "_levels", "_offset", "_peaks", "_size", "_starts")

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        # _levels[k] holds the complete subtree hashes at height k * _STRIDE whose
        # leaves all lie at or above _offset, concatenated; the first is at
        # position _starts[k] of that level.
        self._levels: list[bytearray] = [bytearray()]
        self._starts: list[int] = [0]
        self._peaks: list[tuple[int, bytes]] = []  # (height, hash), heights strictly decreasing
        self._size = 0
        self._offset = 0
        self._base: dict[tuple[int, int], bytes] = {}  # (lo, width) -> hash below _offset
        for leaf in leaves:
            self.append(leaf)

    @classmethod
    def from_frontier(cls, size: int, frontier: Sequence[bytes]) -> MerkleTree:
        """A tree of ``size`` leaves known only by its left-edge hashes (see ``frontier``)."""
        ranges = _decompose(size)
        if len(frontier) != len(ranges) or any(len(h) != HASH_SIZE for h in frontier):
            raise MerkleError(f"a tree of {size} leaves has {len(ranges)} frontier hashes")
        tree = cls()
        tree._size = tree._offset = size
        tree._base = {r: bytes(h) for r, h in zip(ranges, frontier, strict=True)}
        tree._peaks = [
            (w.bit_length() - 1, bytes(h)) for (_, w), h in zip(ranges, frontier, strict=True)
        ]
        tree._starts = [0]
        tree._levels = [bytearray()]
        tree._starts[0] = size
        return tree

    def __len__(self) -> int:
        return self._size

    @property
    def size(self) -> int:
        return self._size

    @property
    def min_index(self) -> int:
        """The oldest leaf whose hash, and so whose path, the tree still has."""
        return self._offset

    def frontier(self) -> list[bytes]:
        """The hashes of the complete subtrees that make up the current size, left to right."""
        return [node for _, node in self._peaks]

    def append(self, leaf: bytes) -> int:
        """Add a leaf; returns its index."""
        if len(leaf) != HASH_SIZE:
            raise MerkleError(f"a leaf is {HASH_SIZE} bytes, got {len(leaf)}")
        index = self._size
        self._levels[0] += leaf
        peaks = self._peaks
        height, node = 0, bytes(leaf)
        while peaks and peaks[-1][0] == height:
            _, left = peaks.pop()
            node = _h(left, node)
            height += 1
            if height % _STRIDE == 0:
                level = height // _STRIDE
                if level == len(self._levels):
                    self._levels.append(bytearray())
                    self._starts.append(-(-self._offset >> height))
                if (index >> height) >= self._starts[level]:
                    self._levels[level] += node
        peaks.append((height, node))
        self._size += 1
        return index

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def leaf(self, index: int) -> bytes:
        self._check_index(index, self._size)
        at = (index - self._offset) * HASH_SIZE
        return bytes(self._levels[0][at : at + HASH_SIZE])

    def root(self) -> bytes:
        """Root at the current size."""
        if not self._peaks:
            raise MerkleError("an empty tree has no root")
        acc = self._peaks[-1][1]
        for _, node in reversed(self._peaks[:-1]):
            acc = _h(node, acc)
        return acc

    def root_at(self, size: int) -> bytes:
        """Root the tree had when it held ``size`` leaves (not below ``min_index``)."""
        if size == self._size:
            return self.root()
        if not max(1, self._offset) <= size <= self._size:
            raise LedgerIndexError(
                f"no root at size {size} (tree has {self._offset}..{self._size} leaves)"
            )
        return self._range_hash(0, size)

    def path(self, index: int, size: int | None = None) -> list[PathStep]:
        """Proof for leaf ``index`` in the tree of ``size`` leaves (default: current)."""
        n = self._size if size is None else size
        if not 1 <= n <= self._size:
            raise LedgerIndexError(f"no tree of size {n} (tree has {self._size} leaves)")
        self._check_index(index, n)
        steps: list[PathStep] = []
        lo, hi = 0, n
        while hi - lo > 1:
            k = _largest_power_of_two_below(hi - lo)
            if index < lo + k:
                steps.append(PathStep(False, self._range_hash(lo + k, hi)))
                hi = lo + k
            else:
                steps.append(PathStep(True, self._perfect(lo, k)))
                lo += k
        steps.reverse()
        return steps

    def retract(self, size: int) -> None:
        """Forget every leaf at or above ``size`` (Raft truncated an uncommitted suffix)."""
        if size >= self._size:
            return
        if size < self._offset:
            raise LedgerIndexError(
                f"cannot retract to {size}: leaves below {self._offset} are flushed"
            )
        for k, level in enumerate(self._levels):
            keep = max(0, (size >> (k * _STRIDE)) - self._starts[k])
            del level[keep * HASH_SIZE :]
        self._size = size
        self._peaks = [(w.bit_length() - 1, self._perfect(lo, w)) for lo, w in _decompose(size)]

    def flush(self, index: int) -> None:
        """Forget leaves below ``index``; their paths can no longer be produced."""
        if index <= self._offset:
            return
        if index > self._size:
            raise LedgerIndexError(f"cannot flush to {index}: the tree has {self._size} leaves")
        base = {(lo, w): self._perfect(lo, w) for lo, w in _decompose(index)}
        for k, level in enumerate(self._levels):
            height = k * _STRIDE
            new_start = -(-index >> height)
            drop = min(new_start - self._starts[k], len(level) // HASH_SIZE)
            if drop > 0:
                del level[: drop * HASH_SIZE]
            self._starts[k] = new_start
        self._offset = index
        self._base = base

    # -- internals --------------------------------------------------------------------

    def _check_index(self, index: int, size: int) -> None:
        if not self._offset <= index < size:
            raise LedgerIndexError(
                f"leaf {index} outside leaves {self._offset}..{size - 1} of the tree"
            )

    def _perfect(self, lo: int, width: int) -> bytes:
        """Hash of the complete subtree of ``width`` (a power of two) leaves from ``lo``."""
        if lo < self._offset:
            known = self._base.get((lo, width))
            if known is not None:
                return known
            if lo + width <= self._offset or width == 1:
                raise MerkleError(f"leaves {lo}..{lo + width - 1} have been flushed")
            half = width // 2
            return _h(self._perfect(lo, half), self._perfect(lo + half, half))
        height = width.bit_length() - 1
        level = min(height // _STRIDE, len(self._levels) - 1)
        base = level * _STRIDE
        data = self._levels[level]
        first = (lo >> base) - self._starts[level]
        count = width >> base
        nodes = [
            bytes(data[(first + i) * HASH_SIZE : (first + i + 1) * HASH_SIZE]) for i in range(count)
        ]
        while len(nodes) > 1:
            nodes = [_h(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
        return nodes[0]

    def _range_hash(self, lo: int, hi: int) -> bytes:
        """Hash of leaves [lo, hi) as the subtree that range forms (lo aligned as the tree splits)."""
        width = hi - lo
        if width & (width - 1) == 0:
            return self._perfect(lo, width)
        k = _largest_power_of_two_below(width)
        return _h(self._perfect(lo, k), self._range_hash(lo + k, hi))


def _decompose(size: int) -> list[tuple[int, int]]:
    """The complete subtrees (lo, width) that a tree of ``size`` leaves is made of."""
    out: list[tuple[int, int]] = []
    lo = 0
    for bit in reversed(range(size.bit_length())):
        width = 1 << bit
        if size & width:
            out.append((lo, width))
            lo += width
    return out


def verify_path(leaf: bytes, path: Sequence[PathStep], root: bytes) -> bool:
    return fold_path(leaf, path) == root
