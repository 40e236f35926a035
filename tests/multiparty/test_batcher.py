"""The sans-I/O batcher seals by count, bytes and age, per key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from charter.multiparty.batcher import Batcher, BatchLimits


def test_count_bytes_and_age() -> None:
    b: Batcher[str, int] = Batcher(BatchLimits(max_count=3, max_bytes=100, max_wait=0.5))
    assert b.add("k", 1, 10, 0.0) == [] and b.add("k", 2, 10, 0.1) == []
    sealed = b.add("k", 3, 10, 0.2)
    assert [s.items for s in sealed] == [(1, 2, 3)]
    assert b.deadline() is None
    assert b.add("k", 4, 60, 1.0) == []
    sealed = b.add("k", 5, 60, 1.1)  # would pass 100 bytes: 4 goes alone
    assert [s.items for s in sealed] == [(4,)]
    assert b.add("j", 6, 1, 1.2) == []
    assert b.deadline() == 1.1 + 0.5
    assert b.tick(1.5) == []
    assert [s.items for s in b.tick(1.6)] == [(5,)]
    assert [(s.key, s.items) for s in b.tick(2.0)] == [("j", (6,))]
    assert b.pending() == 0


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 50)), max_size=200))
def test_every_item_sealed_once_in_order(items: list[tuple[str, int]]) -> None:
    b: Batcher[str, int] = Batcher(BatchLimits(max_count=7, max_bytes=120, max_wait=1.0))
    out = []
    for i, (key, size) in enumerate(items):
        out.extend(b.add(key, i, size, i * 0.1))
    out.extend(b.flush())
    seen = [i for s in out for i in s.items]
    assert sorted(seen) == list(range(len(items)))
    for s in out:
        assert all(items[i][0] == s.key for i in s.items)
        assert list(s.items) == sorted(s.items)
        assert len(s.items) <= 7 and (s.size <= 120 or len(s.items) == 1)
