"""Row ids: well-formed UUIDv7 strings, unique, ordered by the millisecond they were made."""

from __future__ import annotations

import time
import uuid

from charter.store.ids import new_id, new_ids


def test_ids_are_version_7_uuids_of_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = [*new_ids(300), new_id()]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids:
        u = uuid.UUID(text)
        assert (u.version, u.variant, str(u)) == (7, uuid.RFC_4122, text)
        assert before <= u.int >> 80 <= after


def test_later_ids_sort_after_earlier_ones() -> None:
    first = new_ids(50)
    made = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 == made:  # the next millisecond
        pass
    second = new_ids(50)
    assert max(first) < min(second)  # an index on them grows at its end
