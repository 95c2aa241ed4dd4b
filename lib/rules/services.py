"""The service lifecycle (§4): start, read, end, delete, associate, lists and expiration. Every
function takes the tenant key first; nothing here knows HTTP or DynamoDB (lib.store does)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lib import clock, paging
from lib.clock import format_ms, parse_timestamp
from lib.errors import Conflict, NotFound, ValidationError
from lib.ids import new_service_id
from lib.models import ServiceAssociate, ServiceEnd, ServiceStart
from lib.rules import expiration
from lib.rules.conversation import (
    RESPONSE_LIMIT,
    Conversation,
    Page,
    Selection,
    compact_json,
    fits_whole,
    size_of,
    too_large,
)
from lib.status import Status
from lib.store import embedded, erasure, pages
from lib.store import services as service_store
from lib.store.concurrency import IN_FLIGHT, Write
from lib.store.idempotency import Claim
from lib.store.items import Completion, Expiry, ServiceItem, StateItem

PATH_ID = re.compile(r"[1-9][0-9]{0,18}", re.ASCII)
MAX_ID = 2**63 - 1


def check_service_id(service_id: str) -> str:
    """A service id in a path: decimal digits without sign, leading zero or separators, a positive
    64-bit integer (§1). Anything else names no service: 404."""
    if not PATH_ID.fullmatch(service_id) or int(service_id) > MAX_ID:
        raise NotFound(f"service {service_id[:40]} not found")
    return service_id


def json_text(value: Any) -> str:
    """Stored form of an attached-data value: its JSON text, kept exactly as sent."""
    return compact_json(value)


def texts(attached: dict[str, Any]) -> dict[str, str]:
    return {key: json_text(value) for key, value in attached.items()}


def event_map(fields: dict[str, Any], timestamp_ms: int) -> dict[str, Any]:
    """A stored start or end event: the common fields sent, with the normalised timestamp."""
    event = {k: v for k, v in fields.items() if k != "timestamp"}
    event["timestamp"] = format_ms(timestamp_ms)
    return event


def event_time(timestamp: str | None, now: int) -> int:
    return parse_timestamp(timestamp) if timestamp is not None else now


def completion(body: Any, now: int) -> Completion:
    """The stored end event of an end body (service, state or task)."""
    at = event_time(body.timestamp, now)
    return Completion(event_map(body.event_fields(), at), at, body.disposition, body.disposition_desc,
                            texts(body.attached_data()))


# ---------------------------------------------------------------- start


def start(tenant: str, body: ServiceStart, claim: Claim | None = None) -> str:
    """Create a service; returns its id. One conditional write (with its idempotency record)."""
    now = clock.now_ms()
    expiry = expiration.for_start(body.ttl, body.expiration_time, now)
    for _ in range(3):
        service = new_service(tenant, new_service_id(), body, expiry, now)
        try:
            service_store.create_service(service, claim)
            return service.service_id
        except service_store.IdTaken:
            continue  # same millisecond, same random bits: draw again
    raise Conflict("could not allocate a service id; retry")


def new_service(tenant: str, service_id: str, body: ServiceStart, expiry: Expiry, now: int,
                state_seq: int = 0, task_seq: int = 0) -> ServiceItem:
    """The stored form of a new service (composite start puts it in its transaction)."""
    started_ms = event_time(body.timestamp, now)
    return ServiceItem.new(
        tenant=tenant, service_id=service_id, expiry=expiry, now=now, customer_id=body.customer_id,
        contact_key=body.contact_key, service_type=body.service_type, est_duration=body.est_duration,
        auto_complete_after=body.auto_complete_after if body.auto_complete_after is not None else _aca_default(),
        started=event_map(body.event_fields(), started_ms), started_ms=started_ms, ext=texts(body.attached_data()),
        state_seq=state_seq, task_seq=task_seq)


def _aca_default() -> int | None:
    from lib.settings import settings

    return settings().auto_complete_after_seconds


# ---------------------------------------------------------------- read


def get(tenant: str, service_id: str, selection: Selection) -> dict[str, Any]:
    """A service view with the children it embeds: one round trip (lib.store.embedded)."""
    now = clock.now_ms()
    check_service_id(service_id)
    wanted = embedded_kinds(selection)
    if not wanted:
        return Conversation(service_store.read_service(tenant, service_id, now), now).service_view(selection)
    route = f"GET /services/{service_id}/states (or /tasks)"
    service, found = embedded.read_conversation(tenant, service_id, wanted, now, weigher(selection, now),
                                                RESPONSE_LIMIT)
    if not found.whole:
        raise too_large(route)
    return fits_whole(Conversation(service, now).add(found.children).service_view(selection), route)


def embedded_kinds(selection: Selection) -> embedded.Wanted:
    """The children a selection embeds: kind -> status (None: both statuses)."""
    wanted: embedded.Wanted = {}
    for kind, active, done in (("state", selection.active_states, selection.completed_states),
                               ("task", selection.active_tasks, selection.completed_tasks)):
        if active or done:
            wanted[kind] = None if active and done else (Status.ACTIVE if active else Status.COMPLETED)
    return wanted


def weigher(selection: Selection, now: int) -> embedded.Weigh:
    """What embedded children weigh in a reply: the bytes of their views (a read stops past the limit)."""
    states, tasks = selection.nested_for_state(), selection.for_tasks()

    def weigh(service: ServiceItem, children: list[Any]) -> int:
        conversation = Conversation(service, now)
        return sum(size_of(conversation.view(c, states if isinstance(c, StateItem) else tasks)) + 1 for c in children)

    return weigh


def page_of_services(services: list[ServiceItem], selection: Selection, now: int) -> Page:
    """The views of a page of services with the children they embed, ending early when the next would
    take the reply past its limit. Children are read IN_FLIGHT services at a time (one round trip for
    a page of up to that many; past that, only while the reply has room)."""
    page = Page()
    wanted = embedded_kinds(selection)
    if not wanted:  # nothing embedded: nothing more to read
        for service in services:
            if not page.add(Conversation(service, now).service_view(selection),
                            f"GET /services/{service.service_id}/states (or /tasks)"):
                break
        return page
    weigh = weigher(selection, now)
    for start in range(0, len(services), IN_FLIGHT):
        window = services[start:start + IN_FLIGHT]
        found = embedded.children_of_services(window, wanted, now, weigh, RESPONSE_LIMIT)
        for service, children in zip(window, found):
            route = f"GET /services/{service.service_id}/states (or /tasks)"
            if not children.whole:
                page.refuse(route)
                return page
            if not page.add(Conversation(service, now).add(children.children).service_view(selection), route):
                return page
    return page


# ---------------------------------------------------------------- end, delete


def end(tenant: str, service_id: str, body: ServiceEnd | None) -> None:
    """Complete a service (409 if already completed). One conditional write that reads nothing
    (lib.store.services.end_service): its active states and tasks complete with it on read
    (lib.rules.conversation)."""
    check_service_id(service_id)
    body = body or ServiceEnd()
    now = clock.now_ms()
    wanted = expiration.requested(body.ttl, body.expiration_time, now)
    service_store.end_service(Write(tenant, now), service_id, completion(body, now), wanted)


def delete(tenant: str, service_id: str) -> None:
    """Delete a service with its states, tasks and attached data: gone at once for every reader."""
    erasure.delete_service(Write(tenant, clock.now_ms()), check_service_id(service_id))


# ---------------------------------------------------------------- associate, expiration


def associate(tenant: str, customer_id: str, service_id: str, body: ServiceAssociate | None) -> None:
    """Attach a service to a customer (anonymous -> identified, or from one customer to another),
    optionally updating start-event fields and attached data."""
    check_service_id(service_id)
    check_owner_id("customer_id", customer_id)
    body = body or ServiceAssociate()
    now = clock.now_ms()
    fields = body.event_fields()
    started_ms = parse_timestamp(fields["timestamp"]) if "timestamp" in fields else None
    if started_ms is not None:
        fields["timestamp"] = format_ms(started_ms)
    top = {name: getattr(body, name) for name in ("contact_key", "service_type", "est_duration")
           if getattr(body, name) is not None}
    change = service_store.Association(customer_id, top, fields, started_ms, texts(body.attached_data()))
    service_store.associate_service(Write(tenant, now), service_id, change)


def check_owner_id(name: str, value: str) -> str:
    """customer_id / contact_key in a path: what the start routes accept (§1)."""
    if not value or len(value) > 256 or "/" in value or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ValidationError(f"{name}: 1-256 characters without '/' or control characters")
    return value


def set_expiration(tenant: str, service_id: str, ttl: int | None, expiration_time: str | None) -> str:
    """`PUT /services/{id}`: returns the new expiration time."""
    check_service_id(service_id)
    now = clock.now_ms()
    wanted = expiration.requested(ttl, expiration_time, now)
    if wanted is None:
        raise ValidationError("body: ttl or expiration_time is required")
    service_store.set_expiration(Write(tenant, now), service_id, wanted)
    return format_ms(wanted.expires_ms)


# ---------------------------------------------------------------- lists


@dataclass
class ListQuery:
    """Parameters of the customer / anonymous lists (§5)."""

    status: Status | None  # None = all
    service_types: list[str] | None = None
    started_from: str | None = None
    started_to: str | None = None
    limit: int = 100
    page_token: str | None = None


def time_window(started_from: str | None, started_to: str | None) -> tuple[int | None, int | None]:
    """A start-time window (from inclusive, to exclusive); 400 when it starts after it ends."""
    low = parse_timestamp(started_from, "started_from") if started_from is not None else None
    high = parse_timestamp(started_to, "started_to") if started_to is not None else None
    if low is not None and high is not None and low > high:
        raise ValidationError("started_from: the window starts after started_to")
    return low, high


def list_for_owner(tenant: str, customer_id: str | None, contact_key: str | None, query: ListQuery,
                   selection: Selection) -> tuple[list[dict[str, Any]], str | None]:
    """Services of a customer (or anonymous services of a contact key), oldest first: one Query of
    the owner's index partition (two for `/completed`, see lib.store), embedded children read at
    once for the whole page."""
    owner_field, owner = ("customer_id", customer_id) if customer_id is not None else ("contact_key", contact_key)
    check_owner_id(owner_field, owner)
    now = clock.now_ms()
    low, high = time_window(query.started_from, query.started_to)
    types = parse_types(query.service_types, "service_types")
    scope = paging.fingerprint(tenant, owner_field, owner, query.status, low, high, types)
    resume = paging.decode(query.page_token, scope)
    page = pages.OwnerPage(customer_id, contact_key if customer_id is None else None, query.status, (low, high),
                           types, resume.get("after") if resume else None, query.limit)
    services, more = pages.owner_services(tenant, page, now)
    views = page_of_services(services, selection, now)
    more = more or views.cut
    last = services[len(views) - 1] if views else None
    token = paging.encode({"after": pages.list_key(last)}, scope) if more and last is not None else None
    return views, token


def parse_types(values: list[str] | None, name: str) -> list[Any]:
    """A list filter of business attributes (CSV, repeated, or both). Values are matched as sent,
    and numeric ones also as numbers, since business attributes may be stored as either."""
    found: list[Any] = []
    for value in csv_values(values):
        found.append(value)
        if re.fullmatch(r"-?[0-9]{1,18}", value, re.ASCII):
            found.append(int(value))
    if len(found) > 90:
        raise ValidationError(f"{name}: at most 45 values")
    return found


def csv_values(values: list[str] | None) -> list[str]:
    """A list parameter given as CSV, by repetition, or both (§5): `a&x=b,c` -> [a, b, c]."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
