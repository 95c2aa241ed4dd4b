"""Expiration of conversations (§7): what a request asks for, or the default.

The service item holds the authoritative expiration (`expires_ms`); every read compares it with the
clock, so an expired conversation is gone at once. Every item also carries the table's TTL attribute
(`expire_at`) so DynamoDB erases it for free; the store keeps the children's TTL never earlier than
the service's expiration (lib.store.items.Expiry, lib.store.conversations).
"""

from __future__ import annotations

from lib.clock import parse_timestamp
from lib.settings import settings
from lib.store.items import Expiry


def requested(ttl: int | None, expiration_time: str | None, now: int) -> Expiry | None:
    """The expiration a request asks for, if any (`ttl` wins over `expiration_time`)."""
    if ttl is not None:
        return Expiry(now + ttl * 1000, True)
    if expiration_time is not None:
        return Expiry(parse_timestamp(expiration_time, "expiration_time"), True)
    return None


def default(now: int) -> Expiry:
    """DEFAULT_EXPIRATION after now, sliding with later writes."""
    return Expiry(now + settings().default_expiration_seconds * 1000, False)


def for_start(ttl: int | None, expiration_time: str | None, now: int) -> Expiry:
    return requested(ttl, expiration_time, now) or default(now)
