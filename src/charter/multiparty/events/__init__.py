"""Events and subscriptions: the node's durable event log delivered over WebSocket and webhooks."""

from charter.multiparty.events.service import EventsService, EventsSettings
from charter.multiparty.events.spec import FilterSpec, SubscriptionSpec
from charter.multiparty.events.types import EventType, is_event_type
from charter.store.events import NewEvent, append_event, append_events

__all__ = [
    "EventType",
    "EventsService",
    "EventsSettings",
    "FilterSpec",
    "NewEvent",
    "SubscriptionSpec",
    "append_event",
    "append_events",
    "is_event_type",
]
