"""The key-value store against a model that keeps every version: applied and committed
reads, settling, and a snapshot taken with writes unsettled."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from charter.ledger.engine import Write
from charter.ledger.engine.kv import KVStore

KEYS = [("t", "a"), ("t", "b"), ("u", "a")]
_WRITE = st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), st.binary(min_size=1, max_size=3)))
_STEP = st.one_of(
    st.tuples(st.just("apply"), st.lists(_WRITE, min_size=1, max_size=3, unique_by=lambda w: w[0])),
    st.tuples(st.just("settle"), st.integers(0, 4)),
    st.tuples(st.just("snapshot"), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_STEP, max_size=40))
def test_reads_match_a_model_of_every_version(steps: list[tuple[str, object]]) -> None:
    store = KVStore()
    versions: list[tuple[int, dict[tuple[str, str], bytes]]] = [(0, {})]  # state after seqno
    settled = 0
    seqno = 0
    for op, arg in steps:
        if op == "apply":
            seqno += 1
            writes = sorted(Write(t, k, v) for (t, k), v in arg)  # type: ignore[attr-defined]
            store.apply(seqno, writes)
            state = dict(versions[-1][1])
            for t, k, v in writes:
                if v is None:
                    state.pop((t, k), None)
                else:
                    state[(t, k)] = v
            versions.append((seqno, state))
        elif op == "settle":
            settled = max(settled, min(seqno + 1, settled + int(arg)))  # type: ignore[call-overload]
            store.settle(settled)
        else:
            store = KVStore.from_syrup(store.to_syrup())
        applied = versions[-1][1]
        committed = next(s for n, s in reversed(versions) if n < max(settled, 1))
        for t, k in KEYS:
            assert store.get(t, k) == applied.get((t, k))
            assert store.get_committed(t, k) == committed.get((t, k))
