"""What the change feed's publisher reads from the table, and nothing else: a conversation's active
states and tasks, for a service's end that left its cascade to be read (lib.store.events.cascade_read;
docs/DESIGN.md, "Change feed"). The publisher is given it (handlers/feed.py); lib.feed itself never
reaches the store."""

from __future__ import annotations

from lib.store.cascades import active_items as active_children  # every active state and task, as stored

__all__ = ["active_children"]
