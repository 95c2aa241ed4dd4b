"""The service lifecycle (§4): start, read, end, delete, associate, lists, expiration and the
deprecated extension PUT. Every function takes the tenant key first; nothing here knows HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib import clock, paging, store
from lib.clock import format_ms, parse_timestamp, sortable_ms
from lib.errors import Conflict, NotFound, ValidationError
from lib.ids import new_service_id
from lib.models import ServiceAssociate, ServiceEnd, ServiceStart
from lib.rules import expiration
from lib.rules.conversation import Conversation, Selection

# A build function adds its clauses to the Update and returns the conditions it relies on; it gets
# the item as it was when a previous attempt failed (None on the first attempt).
Build = Callable[[store.Update, "dict[str, Any] | None"], list[str]]


def service_key(tenant: str, service_id: str) -> dict[str, str]:
    return {"PK": store.conversation_pk(tenant, service_id), "SK": store.SERVICE_SK}


def check_service_id(service_id: str) -> str:
    """A path's service id: ids are decimal 64-bit integers, so anything else is simply unknown."""
    if not service_id.isdigit() or len(service_id) > 19 or int(service_id) == 0:
        raise NotFound(f"service {service_id} not found")
    return service_id


def is_live(item: dict[str, Any] | None, now: int) -> bool:
    return item is not None and item.get("expires_ms", 0) > now


def json_text(value: Any) -> str:
    """Stored form of an attached-data value: its JSON text, kept exactly as sent."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def ext_sets(op: store.Update, attached: dict[str, Any], prefix: str = "ext") -> None:
    """SET one attached-data key each (a later event replaces only the keys it sends)."""
    for key, value in attached.items():
        op.sets[store.path(prefix, key)] = json_text(value)


def event_map(fields: dict[str, Any], timestamp_ms: int) -> dict[str, Any]:
    """A stored start or end event: the common fields sent, with the normalised timestamp."""
    event = {k: v for k, v in fields.items() if k != "timestamp"}
    event["timestamp"] = format_ms(timestamp_ms)
    return event


def event_time(timestamp: str | None, now: int) -> int:
    return parse_timestamp(timestamp) if timestamp is not None else now


def write_service(tenant: str, service_id: str, build: Build, now: int) -> dict[str, Any]:
    """Conditional UpdateItem of a live service item, retried with what a failed attempt revealed.

    The first attempt assumes the common case (e.g. no explicit expiration, service active) and
    states it in its condition; if that fails, the old item DynamoDB returns tells the truth and
    the next attempt is built from it. A missing or expired service is a 404."""
    known: dict[str, Any] | None = None
    for _ in range(4):
        op = store.Update(key=service_key(tenant, service_id))
        e = op.expr
        conditions = [f"attribute_exists({e.name('PK')})", f"{e.name('expires_ms')} > {e.value(now)}"]
        conditions += build(op, known)
        op.condition = " AND ".join(conditions)
        try:
            new = store.update(op, return_new=True)
        except store.ConditionFailed as failed:
            if not is_live(failed.old, now):
                raise NotFound(f"service {service_id} not found") from None
            known = failed.old
            continue
        expiration.sync_children(new, now)
        return new
    raise Conflict(f"service {service_id} changed concurrently; retry")


# ---------------------------------------------------------------- start


def start(tenant: str, body: ServiceStart) -> str:
    """Create a service; returns its id. One conditional PutItem."""
    now = clock.now_ms()
    started_ms = event_time(body.timestamp, now)
    expiry = expiration.requested(body.ttl, body.expiration_time, now) or expiration.default(now)
    for _ in range(3):
        service_id = new_service_id()
        item = new_service_item(tenant, service_id, body, started_ms, expiry, now)
        try:
            store.put_new(item)
            return service_id
        except store.ConditionFailed:
            continue  # id collision (same millisecond, same random bits): draw again
    raise Conflict("could not allocate a service id; retry")


def new_service_item(tenant: str, service_id: str, body: ServiceStart, started_ms: int,
                     expiry: expiration.Expiry, now: int) -> dict[str, Any]:
    """The stored form of a new service (also used by composite start inside its transaction)."""
    item: dict[str, Any] = {
        **service_key(tenant, service_id),
        "service_id": service_id,
        "customer_id": body.customer_id,
        "contact_key": body.contact_key,
        "service_type": body.service_type,
        "est_duration": body.est_duration,
        "auto_complete_after": body.auto_complete_after,
        "started": event_map(body.event_fields(), started_ms),
        "started_ms": started_ms,
        "ext": {k: json_text(v) for k, v in body.attached_data().items()},
        "expires_ms": expiry.expires_ms,
        store.TTL_ATTRIBUTE: expiration.ttl_seconds(expiry.expires_ms, now),
        "expiry_explicit": True if expiry.explicit else None,
        "children_ttl": expiration.children_ttl_for(expiry, now),
        "state_seq": 0,
        "task_seq": 0,
    }
    item.update(_owner_attributes(tenant, item))
    item.update(store.service_index_keys(tenant, item))
    return item


def _owner_attributes(tenant: str, item: dict[str, Any]) -> dict[str, Any]:
    """Index keys the service will move to when it completes. Kept on the item so that ending a
    service is a single UpdateItem (`SET GSI2PK = owner_done_pk`) with no read first."""
    kind, _ = store.owner_pk(tenant, item.get("customer_id"), item.get("contact_key"))
    return {
        "owner_done_pk": store.owner_status_pk(tenant, item.get("customer_id"), item.get("contact_key"), store.COMPLETED),
        "tenant_done_pk": store.tenant_status_pk(tenant, store.COMPLETED, kind),
    }


# ---------------------------------------------------------------- read


def get(tenant: str, service_id: str, selection: Selection) -> dict[str, Any]:
    """A service view: one GetItem, or one Query of the conversation when children are embedded."""
    conversation = load(tenant, service_id, with_children=selection.needs_children, through=reach(selection))
    return conversation.service_view(selection)


def load(tenant: str, service_id: str, with_children: bool = True, now: int | None = None,
         through: str | None = store.TASK_PREFIX) -> Conversation:
    """Read a live conversation (404 when missing or expired): the service item alone, or one Query
    of the service with its states (`through=STATE_PREFIX`), states and tasks (the default), or
    everything including composite-start locks (`through=None`)."""
    check_service_id(service_id)
    now = clock.now_ms() if now is None else now
    pk = store.conversation_pk(tenant, service_id)
    if with_children:
        conversation = Conversation.from_items(store.query_collection(pk, through))
    else:
        item = store.get(pk, store.SERVICE_SK)
        conversation = Conversation(item) if item is not None else None
    return require_live(conversation, service_id, now)


def require_live(conversation: Conversation | None, service_id: str, now: int) -> Conversation:
    """The conversation, if its service item was found and has not expired; else a 404."""
    if conversation is None or not is_live(conversation.service, now):
        raise NotFound(f"service {service_id} not found")
    return conversation


def reach(selection: Selection) -> str:
    """How far into a conversation a read must go for what it embeds (see load's `through`)."""
    return store.TASK_PREFIX if selection.embeds_tasks else store.STATE_PREFIX


# ---------------------------------------------------------------- end


def end(tenant: str, service_id: str, body: ServiceEnd | None) -> None:
    """Complete a service (409 if already completed). One conditional UpdateItem: its active states
    and tasks are completed with it by the read-time cascade (lib.conversation)."""
    check_service_id(service_id)
    body = body or ServiceEnd()
    now = clock.now_ms()
    completed_ms = event_time(body.timestamp, now)
    wanted = expiration.requested(body.ttl, body.expiration_time, now)

    def build(op: store.Update, known: dict[str, Any] | None) -> list[str]:
        e = op.expr
        if known is not None and known.get("completed_ms") is not None:
            raise Conflict(f"service {service_id} is already completed")
        if known is not None and completed_ms < known["started_ms"]:
            raise ValidationError("timestamp: the end is before the service's start")
        op.sets.update({
            "completed": event_map(body.event_fields(), completed_ms),
            "completed_ms": completed_ms,
            "disposition": body.disposition,
            "disposition_desc": body.disposition_desc,
            "GSI4PK": store.tenant_end_pk(tenant),
            "GSI4SK": store.time_sk(completed_ms, service_id),
        })
        # The service moves between status partitions: GSI2PK / GSI3PK take the values kept in
        # owner_done_pk / tenant_done_pk, copied attribute to attribute inside this same update.
        op.copies.update({"GSI2PK": "owner_done_pk", "GSI3PK": "tenant_done_pk"})
        ext_sets(op, body.attached_data())
        conditions = [f"attribute_not_exists({e.name('completed_ms')})",
                      f"{e.name('started_ms')} <= {e.value(completed_ms)}"]
        conditions += expiration.write_clauses(op, wanted, known, now)
        return conditions

    write_service(tenant, service_id, build, now)


# ---------------------------------------------------------------- delete


def delete(tenant: str, service_id: str) -> None:
    """Delete a service with its states, tasks and attached data. The service item goes first, in a
    conditional delete, so the conversation disappears for every reader at once; the children
    follow in batches (a crash in between leaves only invisible items that their TTL erases)."""
    check_service_id(service_id)
    pk = store.conversation_pk(tenant, service_id)
    e = store.Expression()
    request = e.apply({
        "TableName": store.table_name(),
        "Key": store.to_item(service_key(tenant, service_id)),
        "ConditionExpression": f"attribute_exists({e.name('PK')}) AND {e.name('expires_ms')} > {e.value(clock.now_ms())}",
    })
    try:
        store.call("delete_item", **request)
    except store.ConditionFailed:
        raise NotFound(f"service {service_id} not found") from None
    children = [(item["PK"], item["SK"]) for item in store.query_collection(pk)]
    store.delete_keys(children)


# ---------------------------------------------------------------- associate


def associate(tenant: str, customer_id: str, service_id: str, body: ServiceAssociate | None) -> None:
    """Attach a service to a customer (anonymous -> identified, or from one customer to another),
    optionally updating start-event fields and attached data. Index keys move with it."""
    check_service_id(service_id)
    if not customer_id or len(customer_id) > 256:
        raise ValidationError("customer_id: must be 1-256 characters")
    body = body or ServiceAssociate()
    now = clock.now_ms()
    fields = body.event_fields()

    def build(op: store.Update, known: dict[str, Any] | None) -> list[str]:
        e = op.expr
        # The status decides the index partitions; assume active until the store says otherwise.
        completed = known is not None and known.get("completed_ms") is not None
        op.sets["customer_id"] = customer_id
        for name in ("contact_key", "service_type", "est_duration"):
            if getattr(body, name) is not None:
                op.sets[name] = getattr(body, name)
        for name, value in fields.items():
            op.sets[store.path("started", name)] = value
        ext_sets(op, body.attached_data())
        status = store.COMPLETED if completed else store.ACTIVE
        # Once associated, the customer alone decides the owner partitions.
        op.sets["GSI1PK"] = store.owner_pk(tenant, customer_id, None)[1]
        op.sets["GSI2PK"] = store.owner_status_pk(tenant, customer_id, None, status)
        op.sets["GSI3PK"] = store.tenant_status_pk(tenant, status, store.CUSTOMER)
        op.sets.update(_owner_attributes(tenant, {"customer_id": customer_id}))
        conditions = [f"attribute_exists({e.name('completed_ms')})" if completed
                      else f"attribute_not_exists({e.name('completed_ms')})"]
        if "timestamp" in fields:
            started_ms = parse_timestamp(fields["timestamp"])
            op.sets["started_ms"] = started_ms
            for index in ("GSI1SK", "GSI2SK", "GSI3SK"):
                op.sets[index] = store.time_sk(started_ms, service_id)
            if completed:
                if started_ms > known["completed_ms"]:
                    raise ValidationError("timestamp: the start would be after the service's end")
                conditions.append(f"{e.name('completed_ms')} >= {e.value(started_ms)}")
        conditions += expiration.write_clauses(op, None, known, now)
        return conditions

    write_service(tenant, service_id, build, now)


# ---------------------------------------------------------------- expiration and extensions


def set_expiration(tenant: str, service_id: str, ttl: int | None, expiration_time: str | None) -> str:
    """`PUT /services/{id}`: returns the new expiration time."""
    check_service_id(service_id)
    now = clock.now_ms()
    wanted = expiration.requested(ttl, expiration_time, now)
    assert wanted is not None  # the model requires one of the two

    def build(op: store.Update, known: dict[str, Any] | None) -> list[str]:
        return expiration.write_clauses(op, wanted, known, now)

    write_service(tenant, service_id, build, now)
    return format_ms(wanted.expires_ms)


def put_extension(tenant: str, service_id: str, name: str, value: Any) -> None:
    """Deprecated `PUT /services/{id}/extensions/{name}`: replace one attached-data key."""
    check_service_id(service_id)
    check_extension_name(name)
    now = clock.now_ms()

    def build(op: store.Update, known: dict[str, Any] | None) -> list[str]:
        ext_sets(op, {name: value})
        return expiration.write_clauses(op, None, known, now)

    write_service(tenant, service_id, build, now)


def check_extension_name(name: str) -> None:
    if not name or len(name) > 128:
        raise ValidationError("ext_name: attached-data keys are 1-128 characters")


# ---------------------------------------------------------------- lists


@dataclass
class ListQuery:
    """Parameters of the customer / anonymous lists (§5)."""

    status: str | None  # None = all, store.ACTIVE, store.COMPLETED
    service_types: str | None = None
    started_from: str | None = None
    started_to: str | None = None
    limit: int = 100
    page_token: str | None = None


def list_for_owner(tenant: str, customer_id: str | None, contact_key: str | None, query: ListQuery,
                   selection: Selection) -> tuple[list[dict[str, Any]], str | None]:
    """Services of a customer (or anonymous services of a contact key), oldest first.

    One Query of the owner index (all statuses) or the owner-status index, bounded on the start
    time in the key condition; only expired rows and other service types are filtered."""
    now = clock.now_ms()
    if query.status is None:
        index, pk = store.OWNER_INDEX, store.owner_pk(tenant, customer_id, contact_key)[1]
    else:
        index, pk = store.OWNER_STATUS_INDEX, store.owner_status_pk(tenant, customer_id, contact_key, query.status)
    q = store.IndexQuery(index=index, pk=pk)
    if query.started_from is not None:
        q.sk_from = sortable_ms(parse_timestamp(query.started_from, "started_from"))
    if query.started_to is not None:
        q.sk_to = sortable_ms(parse_timestamp(query.started_to, "started_to"))
    e = q.expr
    filters = [f"{e.name('expires_ms')} > {e.value(now)}"]
    types = parse_types(query.service_types)
    if types:
        filters.append(f"{e.name('service_type')} IN ({', '.join(e.value(t) for t in types)})")
    q.filter = " AND ".join(filters)
    token_scope = paging.fingerprint(tenant, index, pk, q.sk_from, q.sk_to, types)
    start_key = paging.decode(query.page_token, token_scope)
    items, more = q.items(start_key, query.limit)
    views = []
    through = reach(selection)
    for item in items:
        conversation = (load(tenant, item["service_id"], with_children=True, now=now, through=through)
                        if selection.needs_children else Conversation(item))
        views.append(conversation.service_view(selection))
    next_token = paging.encode(store.key_of(items[-1], index), token_scope) if more and items else None
    return views, next_token


def parse_types(csv: str | None) -> list[Any]:
    """A CSV filter of business attributes. Values are matched as sent, and numeric ones also as
    numbers, since business attributes may be stored as integers or strings."""
    values: list[Any] = []
    for raw in (csv or "").split(","):
        value = raw.strip()
        if not value:
            continue
        values.append(value)
        if value.lstrip("-").isdigit() and len(value) < 30:
            values.append(int(value))
    if len(values) > 90:
        raise ValidationError("service_types: at most 45 values")
    return values
