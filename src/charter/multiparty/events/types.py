"""Event types: an open set of names; these are the ones Charter itself emits."""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = ["EVENT_TYPE_PATTERN", "EventType", "is_event_type"]

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_NAME = re.compile(EVENT_TYPE_PATTERN)


class EventType(StrEnum):
    """Well-known types. Other areas may append any name matching ``EVENT_TYPE_PATTERN``."""

    MESSAGE_CONFIRMED = "message_confirmed"
    MESSAGE_FAILED = "message_failed"
    MESSAGE_REJECTED = "message_rejected"
    DATA_ARRIVED = "data_arrived"
    BLOB_ARRIVED = "blob_arrived"
    DATATYPE_CONFIRMED = "datatype_confirmed"
    TRANSACTION_SUBMITTED = "transaction_submitted"
    TOKEN_POOL_CONFIRMED = "token_pool_confirmed"
    TOKEN_TRANSFER_CONFIRMED = "token_transfer_confirmed"


def is_event_type(name: str) -> bool:
    return _NAME.fullmatch(name) is not None
