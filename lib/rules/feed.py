"""What the change feed's publisher reads from the table, and nothing else: a conversation's active
states and tasks, for a service's end that left its cascade to be read (lib.store.events.cascade_read;
docs/DESIGN.md, "Change feed"). The publisher is given it (handlers/feed.py); lib.feed itself never
reaches the store."""

from __future__ import annotations

from typing import Any

from lib.store.cascades import active_items


def active_children(pk: str) -> list[dict[str, Any]]:
    """Every active state and task of the conversation `pk`, as stored."""
    return active_items(pk)
