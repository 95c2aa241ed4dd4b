"""Access grants (lib.api.access decides with them): one item per principal holding its role and the
tenants it may use, listed through one partition of GSI1 (tenant partitions always contain '|', so
they never meet it)."""

from __future__ import annotations

from typing import Any

from lib.store import keys as K
from lib.store import table
from lib.store.codec import decode_item, encode_item
from lib.store.expressions import Expression, Query

GRANT = "grant"  # the item type


def lookup(principal: str) -> dict[str, Any] | None:
    """A principal's grant as stored ({"role", "tenants"}), or None: one eventually consistent GetItem
    of just those attributes (the hot path of every request of a cold caller)."""
    e = Expression()
    request = {"TableName": table.table_name(), "Key": encode_item(K.grant_key(principal)),
               "ProjectionExpression": ", ".join(e.name(a) for a in ("role", "tenants", "type"))}
    item = decode_item(table.call("get_item", **e.apply(request)).get("Item"))
    if not item or item.get("type") != GRANT:
        return None
    return {"role": item.get("role"), "tenants": sorted(item.get("tenants") or [])}


def read(principal: str) -> dict[str, Any] | None:
    """A principal's grant ({"principal", "role", "tenants"}), strongly consistent (for changes)."""
    item = table.get(K.grant_key(principal))
    if not item or item.get("type") != GRANT:
        return None
    return {"principal": principal, "role": item.get("role"), "tenants": list(item.get("tenants") or [])}


def put(principal: str, role: str, tenants: list[str]) -> None:
    """Give (or replace) a principal's grant."""
    table.put({**K.grant_key(principal), "type": GRANT, "role": role, "tenants": list(tenants),
               "GSI1PK": K.GRANTS_PK, "GSI1SK": principal})


def delete(principal: str) -> None:
    table.delete(K.grant_key(principal))


def every() -> list[dict[str, Any]]:
    """Every grant, by principal (one Query of the grants' index partition, paged)."""
    items = Query(K.GRANTS_PK, index=K.GRANTS_INDEX).all()
    return [{"principal": item["GSI1SK"], "role": item.get("role"), "tenants": list(item.get("tenants") or [])}
            for item in items if item.get("type") == GRANT]
