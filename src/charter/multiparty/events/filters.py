"""Matching events against a subscription's filter (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from charter.multiparty.events.spec import FilterSpec

__all__ = ["EventFilter", "EventLike"]


class EventLike(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def topic(self) -> str | None: ...
    @property
    def author(self) -> str | None: ...
    @property
    def group_hash(self) -> str | None: ...


@dataclass(frozen=True)
class EventFilter:
    types: frozenset[str] | None = None
    topic_pattern: re.Pattern[str] | None = None
    topics: frozenset[str] | None = None
    authors: frozenset[str] | None = None
    groups: frozenset[str] | None = None

    @classmethod
    def from_spec(cls, spec: FilterSpec) -> EventFilter:
        def opt(values: list[str] | None) -> frozenset[str] | None:
            return None if values is None else frozenset(values)

        return cls(
            types=opt(spec.types),
            topic_pattern=None if spec.topic is None else re.compile(spec.topic),
            topics=opt(spec.topics),
            authors=opt(spec.authors),
            groups=opt(spec.groups),
        )

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> EventFilter:
        return cls.from_spec(FilterSpec.model_validate(dict(stored)))

    def matches(self, event: EventLike) -> bool:
        if self.types is not None and event.type not in self.types:
            return False
        if self.topic_pattern is not None and (
            event.topic is None or self.topic_pattern.fullmatch(event.topic) is None
        ):
            return False
        if self.topics is not None and event.topic not in self.topics:
            return False
        if self.authors is not None and event.author not in self.authors:
            return False
        return self.groups is None or event.group_hash in self.groups
