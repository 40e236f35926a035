"""Errors of events and subscriptions (codes map to HTTP statuses in the events router)."""

from __future__ import annotations

from charter.errors import CharterError

__all__ = ["EventsError", "SubscriptionExists", "SubscriptionNotFound", "WrongTransport"]


class EventsError(CharterError):
    code = "events.error"


class SubscriptionNotFound(EventsError):
    code = "events.subscription.not_found"


class SubscriptionExists(EventsError):
    code = "events.subscription.exists"


class WrongTransport(EventsError):
    code = "events.subscription.transport"
