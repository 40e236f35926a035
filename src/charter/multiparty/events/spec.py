"""What a subscription asks for, validated before anything is stored.

Pydantic models shared by the REST API (request bodies, OpenAPI), the WebSocket ``start``
message of an ephemeral subscription, and the stored form (``to_row_fields``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from charter.multiparty.events.retry import RetryPolicy
from charter.multiparty.events.types import EVENT_TYPE_PATTERN

__all__ = [
    "SUBSCRIPTION_NAME_PATTERN",
    "FilterSpec",
    "RetrySpec",
    "SubscriptionSpec",
    "WebhookSpec",
]

SUBSCRIPTION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
MAX_PATTERN = 256
MAX_LIST = 100

EventTypeName = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN)]
Short = Annotated[str, Field(min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterSpec(_Strict):
    """Every given criterion must hold; an absent one matches everything."""

    types: list[EventTypeName] | None = Field(
        default=None, max_length=MAX_LIST, description="event types to deliver"
    )
    topic: str | None = Field(
        default=None,
        max_length=MAX_PATTERN,
        description="regular expression the whole topic must match",
    )
    topics: list[Short] | None = Field(
        default=None, max_length=MAX_LIST, description="exact topics"
    )
    authors: list[Short] | None = Field(
        default=None, max_length=MAX_LIST, description="members whose messages to deliver"
    )
    groups: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] | None = Field(
        default=None, max_length=MAX_LIST, description="group hashes"
    )

    @field_validator("topic")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"topic is not a valid regular expression: {exc}") from None
        return value


class RetrySpec(_Strict):
    max_attempts: int = Field(default=5, ge=1, le=100)
    initial_delay: float = Field(default=1.0, gt=0, le=3600, description="seconds")
    factor: float = Field(default=2.0, ge=1, le=10)
    max_delay: float = Field(default=60.0, gt=0, le=86400, description="seconds")

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.initial_delay, self.factor, self.max_delay)


class WebhookSpec(_Strict):
    url: str = Field(max_length=2048, description="http(s) URL the events are POSTed to")
    timeout: float = Field(default=10.0, gt=0, le=300, description="seconds per attempt")
    retry: RetrySpec = Field(default_factory=RetrySpec)
    headers: dict[Short, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, max_length=32
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an absolute http or https URL")
        return value


FirstEvent = Literal["oldest", "newest"] | Annotated[int, Field(ge=0)]


class SubscriptionSpec(_Strict):
    """A durable subscription (``POST /api/v1/subscriptions``)."""

    name: str = Field(pattern=SUBSCRIPTION_NAME_PATTERN)
    transport: Literal["websocket", "webhook"] = "websocket"
    filter: FilterSpec = Field(default_factory=FilterSpec)
    first_event: FirstEvent = Field(
        default="newest",
        description="oldest: the whole log; newest: events after creation; N: from offset N on",
    )
    read_ahead: int = Field(
        default=50, ge=1, le=1000, description="most events delivered and not yet acknowledged"
    )
    ack_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="seconds before an unacknowledged event is sent again",
    )
    with_data: bool = Field(default=False, description="inline the message and its data values")
    webhook: WebhookSpec | None = None

    @model_validator(mode="after")
    def _transport_options(self) -> SubscriptionSpec:
        if self.transport == "webhook" and self.webhook is None:
            raise ValueError("a webhook subscription needs webhook.url")
        if self.transport == "websocket" and self.webhook is not None:
            raise ValueError("webhook options belong to transport 'webhook'")
        return self

    def start_offset(self, newest: int) -> int:
        """The stored offset a new subscription starts from (events above it are delivered)."""
        if self.first_event == "oldest":
            return 0
        if self.first_event == "newest":
            return newest
        return max(0, int(self.first_event) - 1)

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ack_timeout": self.ack_timeout, "with_data": self.with_data}
        if self.webhook is not None:
            out["webhook"] = self.webhook.model_dump()
        return out


class EphemeralSpec(_Strict):
    """An ephemeral WebSocket subscription: lives as long as its connection."""

    filter: FilterSpec = Field(default_factory=FilterSpec)
    first_event: FirstEvent = "newest"
    read_ahead: int = Field(default=50, ge=1, le=1000)
    ack_timeout: float = Field(default=30.0, gt=0, le=3600)
    with_data: bool = False
    autoack: bool = Field(default=False, description="treat every event as acknowledged once sent")

    def start_offset(self, newest: int) -> int:
        if self.first_event == "oldest":
            return 0
        if self.first_event == "newest":
            return newest
        return max(0, int(self.first_event) - 1)
