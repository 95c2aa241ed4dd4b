"""The only module that talks to DynamoDB: key builders, item (de)serialisation, conditional
writes, transactions and queries. See docs/DESIGN.md for the table design.

Items are plain dicts of Python values here; numbers come back as ``int`` (the project stores no
fractions: attached-data values are stored as JSON text, which keeps them exactly as sent).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from lib.clock import sortable_ms
from lib.errors import PayloadTooLarge
from lib.settings import settings

# Sort order inside a conversation: the service, its states, its tasks, then composite-start locks,
# so "the service with its states" and "the service with its states and tasks" are each one key range.
SERVICE_SK = "#SERVICE"
STATE_PREFIX = "S#"
TASK_PREFIX = "T#"
LOCK_PREFIX = "X#"
TTL_ATTRIBUTE = "expire_at"

# Index names and their key attributes (template.yaml declares the same; tests build the table from it).
OWNER_INDEX = "GSI1"  # customer / anonymous lists, all statuses
OWNER_STATUS_INDEX = "GSI2"  # customer / anonymous lists, active or completed
TENANT_STATUS_INDEX = "GSI3"  # maintenance: by status and anonymity, ordered by start time
TENANT_END_INDEX = "GSI4"  # maintenance: completed services ordered by end time (sparse)

ACTIVE, COMPLETED = "A", "C"
CUSTOMER, ANONYMOUS = "CU", "AN"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# ---------------------------------------------------------------- keys


def tenant_key(contact_center: str | None, group: str | None) -> str:
    """Tenant prefix of every key. Header values never contain '|' or '#', and an absent header is
    the empty string, which no header value can be, so distinct (tenant, group) pairs never meet."""
    return f"{contact_center or ''}|{group or ''}"


def conversation_pk(tenant: str, service_id: str) -> str:
    """Partition key of a conversation: the service, its states, tasks and composite-start locks."""
    return f"{tenant}#C#{service_id}"


def state_sk(state_id: int) -> str:
    return f"{STATE_PREFIX}{state_id:010d}"


def task_sk(task_id: int) -> str:
    return f"{TASK_PREFIX}{task_id:010d}"


def lock_sk(kind: str, *parts: Any) -> str:
    """Sort key of a composite-start lock (one per find-or-create key inside a conversation)."""
    return f"{LOCK_PREFIX}{kind}#{_digest(parts)}"


def composite_service_lock_pk(tenant: str, customer_id: str | None, contact_key: str | None, service_type: Any) -> str:
    """Partition key of the tenant-wide lock that makes composite find-or-create of a service unique."""
    return f"{tenant}#COMPOSITE#{_digest((customer_id, contact_key, service_type))}"


def _digest(parts: Iterable[Any]) -> str:
    return hashlib.sha256(json.dumps(list(parts), sort_keys=True).encode()).hexdigest()[:40]


def owner_pk(tenant: str, customer_id: str | None, contact_key: str | None) -> tuple[str, str]:
    """(owner kind, owner partition) of a service: its customer, or its contact key when anonymous."""
    if customer_id is not None:
        return CUSTOMER, f"{tenant}#{CUSTOMER}#{customer_id}"
    return ANONYMOUS, f"{tenant}#{ANONYMOUS}#{contact_key}"


def owner_status_pk(tenant: str, customer_id: str | None, contact_key: str | None, status: str) -> str:
    kind, _ = owner_pk(tenant, customer_id, contact_key)
    ident = customer_id if customer_id is not None else contact_key
    return f"{tenant}#{kind}{status}#{ident}"


def tenant_status_pk(tenant: str, status: str, owner_kind: str) -> str:
    return f"{tenant}#{status}#{owner_kind}"


def tenant_end_pk(tenant: str) -> str:
    return f"{tenant}#END"


def time_sk(ms: int, service_id: str) -> str:
    """Sort key that orders services by a timestamp, then by service id."""
    return f"{sortable_ms(ms)}#{int(service_id):020d}"


def service_index_keys(tenant: str, item: dict[str, Any]) -> dict[str, Any]:
    """Every index attribute of a service item, derived from its fields (one place for all writes)."""
    sid = item["service_id"]
    status = COMPLETED if item.get("completed_ms") is not None else ACTIVE
    kind, owner = owner_pk(tenant, item.get("customer_id"), item.get("contact_key"))
    start_sk = time_sk(item["started_ms"], sid)
    keys = {
        "GSI1PK": owner,
        "GSI1SK": start_sk,
        "GSI2PK": owner_status_pk(tenant, item.get("customer_id"), item.get("contact_key"), status),
        "GSI2SK": start_sk,
        "GSI3PK": tenant_status_pk(tenant, status, kind),
        "GSI3SK": start_sk,
    }
    if status == COMPLETED:
        keys["GSI4PK"] = tenant_end_pk(tenant)
        keys["GSI4SK"] = time_sk(item["completed_ms"], sid)
    return keys


# ---------------------------------------------------------------- client and codecs


@lru_cache(maxsize=1)
def client():
    """The DynamoDB client of this process (honours AWS_ENDPOINT_URL_DYNAMODB)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None
    config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)
    return boto3.client("dynamodb", endpoint_url=endpoint, config=config)


def table_name() -> str:
    return settings().table_name


def to_attr(value: Any) -> dict[str, Any]:
    return _serializer.serialize(value)


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {key: _plain(_deserializer.deserialize(value)) for key, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- errors


class ConditionFailed(Exception):
    """A conditional write did not apply. `old` is the item as it was (None if it did not exist);
    for transactions, `reasons` holds one entry per action: (code, old item or None)."""

    def __init__(self, old: dict[str, Any] | None = None, reasons: list[tuple[str, dict | None]] | None = None):
        super().__init__("condition failed")
        self.old = old
        self.reasons = reasons or []


def _translate(error: ClientError) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(from_item(error.response.get("Item")))
    if code == "TransactionCanceledException":
        raw = error.response.get("CancellationReasons", [])
        if any(r.get("Code") == "ValidationError" and "size" in (r.get("Message") or "").lower() for r in raw):
            return PayloadTooLarge("the record would exceed the store's item size limit (400 KB)")
        return ConditionFailed(reasons=[(r.get("Code", "None"), from_item(r.get("Item"))) for r in raw])
    if code == "ValidationException" and "size" in message.lower() and "item" in message.lower():
        return PayloadTooLarge("the record would exceed the store's item size limit (400 KB)")
    return error


def call(operation: str, **kwargs: Any) -> dict[str, Any]:
    """Run one DynamoDB API call, translating conditional failures and size limits."""
    try:
        return getattr(client(), operation)(**kwargs)
    except ClientError as error:
        raise _translate(error) from error


# ---------------------------------------------------------------- expressions


@dataclass
class Expression:
    """Builds update / condition / filter expressions with placeholders for every name and value."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def name(self, path: str | tuple[str, ...]) -> str:
        """An attribute name, or a document path given as a tuple of segments -> `#n0.#n1`, each
        segment a placeholder (map keys may hold any character, dots and NULs included)."""
        parts = []
        for segment in (path if isinstance(path, tuple) else (path,)):
            placeholder = f"#n{len(self.names)}"
            self.names[placeholder] = segment
            parts.append(placeholder)
        return ".".join(parts)

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = to_attr(value)
        return placeholder

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.names:
            request["ExpressionAttributeNames"] = self.names
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        return request


def path(*segments: str) -> tuple[str, ...]:
    """A document path for Expression.name and Update.sets (segments may hold any character)."""
    return segments


@dataclass
class Update:
    """One UpdateItem (or transactional Update): SET / REMOVE / ADD clauses and a condition."""

    key: dict[str, Any]
    sets: dict[str | tuple[str, ...], Any] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)
    adds: dict[str, int] = field(default_factory=dict)
    copies: dict[str, str] = field(default_factory=dict)  # SET target = source (attribute to attribute)
    condition: str | None = None
    expr: Expression = field(default_factory=Expression)

    def request(self) -> dict[str, Any]:
        e = self.expr
        clauses = []
        sets = [f"{e.name(p)} = {e.value(v)}" for p, v in self.sets.items() if v is not None]
        sets += [f"{e.name(target)} = {e.name(source)}" for target, source in self.copies.items()]
        removes = [e.name(p) for p in self.removes] + [e.name(p) for p, v in self.sets.items() if v is None]
        adds = [f"{e.name(p)} {e.value(v)}" for p, v in self.adds.items()]
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if removes:
            clauses.append("REMOVE " + ", ".join(removes))
        if adds:
            clauses.append("ADD " + ", ".join(adds))
        request = {"TableName": table_name(), "Key": to_item(self.key), "UpdateExpression": " ".join(clauses)}
        if self.condition:
            request["ConditionExpression"] = self.condition
        return e.apply(request)


# ---------------------------------------------------------------- operations


def get(pk: str, sk: str) -> dict[str, Any] | None:
    """Strongly consistent GetItem."""
    response = call("get_item", TableName=table_name(), Key=to_item({"PK": pk, "SK": sk}), ConsistentRead=True)
    return from_item(response.get("Item"))


def get_many(keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Strongly consistent BatchGetItem of a few keys (≤ 100), keyed by (PK, SK)."""
    request = {table_name(): {"Keys": [to_item({"PK": pk, "SK": sk}) for pk, sk in keys], "ConsistentRead": True}}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    while request:
        response = call("batch_get_item", RequestItems=request)
        for raw in response.get("Responses", {}).get(table_name(), []):
            item = from_item(raw)
            found[(item["PK"], item["SK"])] = item
        request = response.get("UnprocessedKeys") or {}
    return found


def put_new(item: dict[str, Any]) -> None:
    """PutItem that fails with ConditionFailed if the key exists."""
    call("put_item", TableName=table_name(), Item=to_item(item), ConditionExpression="attribute_not_exists(PK)")


def update(op: Update, return_new: bool = False) -> dict[str, Any] | None:
    """UpdateItem; on a failed condition raises ConditionFailed carrying the old item."""
    request = op.request()
    request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if return_new:
        request["ReturnValues"] = "ALL_NEW"
    response = call("update_item", **request)
    return from_item(response.get("Attributes")) if return_new else None


def transact(actions: list[dict[str, Any]]) -> None:
    """TransactWriteItems of ≤ 100 actions built by the helpers below."""
    call("transact_write_items", TransactItems=actions)


def tx_update(op: Update) -> dict[str, Any]:
    request = op.request()
    request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Update": request}


def tx_put(item: dict[str, Any], condition: str = "attribute_not_exists(PK)") -> dict[str, Any]:
    return {"Put": {"TableName": table_name(), "Item": to_item(item), "ConditionExpression": condition,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}


def tx_check(pk: str, sk: str, condition: str, expr: Expression) -> dict[str, Any]:
    return {"ConditionCheck": expr.apply({"TableName": table_name(), "Key": to_item({"PK": pk, "SK": sk}),
                                          "ConditionExpression": condition,
                                          "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})}


def query_collection(pk: str, through: str | None = None) -> list[dict[str, Any]]:
    """The items of one partition, consistently: all of them, or from its first key through every key
    that starts with `through` (e.g. STATE_PREFIX: the service and its states)."""
    expr = Expression()
    condition = f"{expr.name('PK')} = {expr.value(pk)}"
    if through:
        condition += f" AND {expr.name('SK')} <= {expr.value(through + chr(0x10FFFF))}"
    request = expr.apply({"TableName": table_name(), "KeyConditionExpression": condition, "ConsistentRead": True})
    items: list[dict[str, Any]] = []
    for page in _pages(request):
        items.extend(from_item(raw) for raw in page.get("Items", []))
    return items


def _pages(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    while True:
        response = call("query", **request)
        yield response
        if "LastEvaluatedKey" not in response:
            return
        request = {**request, "ExclusiveStartKey": response["LastEvaluatedKey"]}


@dataclass
class IndexQuery:
    """A page-able Query of one index partition, optionally bounded on the sort key and filtered."""

    index: str
    pk: str
    sk_from: str | None = None  # inclusive
    sk_to: str | None = None  # exclusive
    filter: str | None = None
    expr: Expression = field(default_factory=Expression)

    def items(self, start_key: dict[str, Any] | None, want: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to `want` items after `start_key` (a key of the index, see key_of); and whether more
        may exist. Reads in pages sized to what is still wanted, so a page reads ~what it returns."""
        e = self.expr
        pk_attr, sk_attr = f"{self.index}PK", f"{self.index}SK"
        condition = f"{e.name(pk_attr)} = {e.value(self.pk)}"
        if self.sk_from is not None and self.sk_to is not None:
            # BETWEEN is inclusive, yet sk_to stays exclusive: bounds are bare time prefixes and every
            # stored key continues past its prefix ("<time>#<id>"), so a key at exactly sk_to's time
            # sorts after sk_to itself.
            condition += f" AND {e.name(sk_attr)} BETWEEN {e.value(self.sk_from)} AND {e.value(self.sk_to)}"
        elif self.sk_from is not None:
            condition += f" AND {e.name(sk_attr)} >= {e.value(self.sk_from)}"
        elif self.sk_to is not None:
            condition += f" AND {e.name(sk_attr)} < {e.value(self.sk_to)}"
        request = {"TableName": table_name(), "IndexName": self.index, "KeyConditionExpression": condition}
        if self.filter:
            request["FilterExpression"] = self.filter
        e.apply(request)
        found: list[dict[str, Any]] = []
        key = to_item(start_key) if start_key else None
        while len(found) < want:
            page_request = {**request, "Limit": want - len(found) + 1}
            if key:
                page_request["ExclusiveStartKey"] = key
            response = call("query", **page_request)
            found.extend(from_item(raw) for raw in response.get("Items", []))
            key = response.get("LastEvaluatedKey")
            if not key:
                return found[:want], len(found) > want
        return found[:want], True


def key_of(item: dict[str, Any], index: str) -> dict[str, Any]:
    """The ExclusiveStartKey that resumes a Query of `index` right after `item`."""
    return {"PK": item["PK"], "SK": item["SK"], f"{index}PK": item[f"{index}PK"], f"{index}SK": item[f"{index}SK"]}


def delete_keys(keys: list[tuple[str, str]]) -> None:
    """BatchWriteItem deletes, 25 keys a call, retrying unprocessed ones."""
    for start in range(0, len(keys), 25):
        request = {table_name(): [{"DeleteRequest": {"Key": to_item({"PK": pk, "SK": sk})}}
                                  for pk, sk in keys[start:start + 25]]}
        while request:
            response = call("batch_write_item", RequestItems=request)
            request = response.get("UnprocessedItems") or {}
