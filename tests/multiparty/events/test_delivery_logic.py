"""The pure parts of delivery: the ack window, the retry schedule, the filters."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from charter.multiparty.events.filters import EventFilter
from charter.multiparty.events.retry import RetryPolicy
from charter.multiparty.events.spec import FilterSpec, SubscriptionSpec
from charter.multiparty.events.window import AckWindow


def test_window_offset_waits_for_the_lowest_unacked() -> None:
    w = AckWindow(offset=10, read_ahead=3, ack_timeout=5.0)
    w.skip(11)
    for off in (12, 13, 14):
        w.sent(off, f"e{off}", {}, now=0.0)
    assert w.capacity == 0
    with pytest.raises(RuntimeError):
        w.sent(15, "e15", {}, now=0.0)
    assert w.take_offset() == 11
    assert w.ack("e13") and not w.ack("e13")
    assert w.take_offset() is None  # 12 is still out
    w.ack("e12")
    assert w.take_offset() == 13
    w.ack("e14")
    assert w.take_offset() == 14


def test_window_resends_overdue_events_oldest_first() -> None:
    w2 = AckWindow(offset=0, read_ahead=5, ack_timeout=1.0)
    w2.sent(1, "a", {"n": 1}, now=0.0)
    w2.sent(2, "b", {"n": 2}, now=0.5)
    assert w2.due(0.9) == []
    assert [f.event_id for f in w2.due(1.6)] == ["a", "b"]
    assert w2.next_deadline() == pytest.approx(2.6)
    with pytest.raises(ValueError):
        w2.sent(2, "again", {}, now=2.0)


_SCRIPTS = st.lists(st.tuples(st.sampled_from(["send", "skip", "ack"]), st.integers(0, 50)))


@settings(max_examples=200, deadline=None)
@given(_SCRIPTS, st.integers(1, 6))
def test_stored_offset_never_passes_an_unacknowledged_event(
    script: list[tuple[str, int]], read_ahead: int
) -> None:
    w = AckWindow(offset=0, read_ahead=read_ahead, ack_timeout=1.0)
    unacked: set[int] = set()
    stored = 0
    nxt = 1
    for action, pick in script:
        if action == "send" and w.capacity > 0:
            w.sent(nxt, f"e{nxt}", {}, now=0.0)
            unacked.add(nxt)
            nxt += 1
        elif action == "skip":
            w.skip(nxt)
            nxt += 1
        elif action == "ack" and unacked:
            chosen = sorted(unacked)[pick % len(unacked)]
            assert w.ack(f"e{chosen}")
            unacked.discard(chosen)
        moved = w.take_offset()
        if moved is not None:
            assert moved > stored
            stored = moved
        assert all(stored < u for u in unacked)
        assert stored == (min(unacked) - 1 if unacked else nxt - 1)


def test_retry_schedule_backs_off_and_gives_up() -> None:
    policy = RetryPolicy(max_attempts=5, initial_delay=0.5, factor=2.0, max_delay=3.0)
    assert [policy.delay_after(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, None]
    assert RetryPolicy(max_attempts=1).delay_after(1) is None
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


@dataclass(frozen=True)
class Ev:
    type: str
    topic: str | None = None
    author: str | None = None
    group_hash: str | None = None


def test_filters_combine_every_criterion() -> None:
    g = "0f" * 32
    f = EventFilter.from_spec(
        FilterSpec(types=["message_confirmed"], topic="orders/.*", authors=["m1"], groups=[g])
    )
    assert f.matches(Ev("message_confirmed", "orders/7", "m1", g))
    assert not f.matches(Ev("message_failed", "orders/7", "m1", g))
    assert not f.matches(Ev("message_confirmed", "x/orders/7", "m1", g))  # whole topic
    assert not f.matches(Ev("message_confirmed", None, "m1", g))
    assert not f.matches(Ev("message_confirmed", "orders/7", "m2", g))
    assert not f.matches(Ev("message_confirmed", "orders/7", "m1", "1" * 64))
    assert EventFilter.from_spec(FilterSpec()).matches(Ev("anything"))
    listed = EventFilter.from_stored({"topics": ["a", "b"]})
    assert listed.matches(Ev("t", "b")) and not listed.matches(Ev("t", "c"))


def test_subscription_start_offsets() -> None:
    assert SubscriptionSpec(name="a", first_event="oldest").start_offset(9) == 0
    assert SubscriptionSpec(name="a").start_offset(9) == 9
    assert SubscriptionSpec(name="a", first_event=4).start_offset(9) == 3
    with pytest.raises(ValidationError, match=re.escape("webhook.url")):
        SubscriptionSpec(name="a", transport="webhook")
