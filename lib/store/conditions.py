"""Named conditions: what a write assumes about the item it writes, said once. Each returns the
clauses of a ConditionExpression built on the write's own Expression (its placeholders)."""

from __future__ import annotations

from lib.store.expressions import Expression


def exists(e: Expression) -> list[str]:
    return [f"attribute_exists({e.name('PK')})"]


def new_item(e: Expression) -> list[str]:
    """The key is free (a new service, state, task or lock)."""
    return [f"attribute_not_exists({e.name('PK')})"]


def live(e: Expression, now: int) -> list[str]:
    """The service exists and has not expired."""
    return exists(e) + [f"{e.name('expires_ms')} > {e.value(now)}"]


def active(e: Expression, now: int) -> list[str]:
    """The service is active: no end recorded, and its auto-complete moment not reached."""
    return [f"attribute_not_exists({e.name('completed_ms')})", f"{e.name('auto_complete_at')} > {e.value(now)}"]


def not_auto_completed(e: Expression, now: int) -> list[str]:
    """Completed by an end event, or not yet at its auto-complete moment (a write may then go ahead
    without having to record the auto-completion first)."""
    return [f"attribute_exists({e.name('completed_ms')}) OR {e.name('auto_complete_at')} > {e.value(now)}"]


def completed(e: Expression) -> list[str]:
    return [f"attribute_exists({e.name('completed_ms')})"]


def completed_by(e: Expression, now: int) -> list[str]:
    """The service is completed now: an end recorded, or its auto-complete moment passed."""
    return [f"attribute_exists({e.name('completed_ms')}) OR {e.name('auto_complete_at')} <= {e.value(now)}"]


def child_active(e: Expression) -> list[str]:
    """The state or task exists and has not ended."""
    return exists(e) + [f"attribute_not_exists({e.name('completed_ms')})"]


def no_cascade(e: Expression) -> list[str]:
    """No state end is still completing its tasks in this conversation."""
    return [f"attribute_not_exists({e.name('cascading')}) OR size({e.name('cascading')}) = {e.value(0)}"]


def equals(e: Expression, name: str | tuple[str, ...], value: object) -> list[str]:
    return [f"{e.name(name)} = {e.value(value)}"]


def absent(e: Expression, name: str | tuple[str, ...]) -> list[str]:
    return [f"attribute_not_exists({e.name(name)})"]


def at_most(e: Expression, name: str, value: int) -> list[str]:
    return [f"{e.name(name)} <= {e.value(value)}"]


def at_least(e: Expression, name: str, value: int) -> list[str]:
    return [f"{e.name(name)} >= {e.value(value)}"]


def free_or_expired(e: Expression, now: int) -> list[str]:
    """An idempotency record may be written if none exists or the old one has expired."""
    return [f"attribute_not_exists({e.name('PK')}) OR {e.name('expires_ms')} < {e.value(now)}"]


def seq_is(e: Expression, seq: int) -> list[str]:
    """The service item's change-feed counter is the one read: nothing was committed on it since
    (lib.store.events). Absent counts as 0."""
    if seq == 0:
        return [f"attribute_not_exists({e.name('seq')}) OR {e.name('seq')} = {e.value(0)}"]
    return [f"{e.name('seq')} = {e.value(seq)}"]


def not_written_by(e: Expression, token: str) -> list[str]:
    """The item does not carry this request's token yet: a retry of a write already applied (its
    reply lost) fails, and the token on the returned item recognises it as ours."""
    return [f"attribute_not_exists({e.name('op')}) OR {e.name('op')} <> {e.value(token)}"]
