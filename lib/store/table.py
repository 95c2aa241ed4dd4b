"""The table: the DynamoDB client (built at init), the error translation, expression building and the
plain operations (get, batch get, query pages, transactions, batch deletes) everything else uses.

Retries are botocore's "standard" mode with 3 attempts in all and short timeouts: DynamoDB answers in
milliseconds, API Gateway gives a request 29 s, and a write that timed out may have been applied, so
every write the project makes is safe to repeat (conditional, and recognisable by its `op` token,
see lib.store.conversations).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from lib.errors import ApiError, Conflict, PayloadTooLarge
from lib.settings import settings
from lib.store.codec import decode_item, encode, encode_item

RETRIES = {"mode": "standard", "total_max_attempts": 3}
CLIENT_CONFIG = Config(retries=RETRIES, connect_timeout=2, read_timeout=5, max_pool_connections=32)
TOO_LARGE = "the record would exceed the store's item size limit (400 KB)"


def _make_client() -> Any:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None
    return boto3.client("dynamodb", endpoint_url=endpoint, config=CLIENT_CONFIG)


# Built at init (import) wherever a region is configured (Lambda always), not on the first request:
# the init phase pays it, requests and SnapStart restores do not. Credentials resolve on first use.
_client: Any = _make_client() if os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") else None


def client() -> Any:
    """The DynamoDB client of this process (honours AWS_ENDPOINT_URL_DYNAMODB)."""
    global _client
    if _client is None:
        _client = _make_client()
    return _client


def reset_client() -> Any:
    """Build the client again (tests: inside a moto mock; the local run: after choosing the endpoint)."""
    global _client
    _client = _make_client()
    return _client


def table_name() -> str:
    return settings().table_name


# ---------------------------------------------------------------- errors


class ConditionFailed(Exception):
    """A conditional write did not apply. `old` is the item as it was (None if it did not exist);
    for transactions, `reasons` holds one (code, old item or None) per action, in order."""

    def __init__(self, old: dict[str, Any] | None = None, reasons: list[tuple[str, dict | None]] | None = None):
        super().__init__("condition failed")
        self.old = old
        self.reasons = reasons or []

    def failed(self, index: int) -> bool:
        """Whether the transaction's action at `index` failed its condition."""
        return index < len(self.reasons) and self.reasons[index][0] == "ConditionalCheckFailed"

    def old_of(self, index: int) -> dict[str, Any] | None:
        return self.reasons[index][1] if index < len(self.reasons) else None


class ConcurrentChange(Conflict):
    """Another transaction held one of the items (TransactionConflict): the caller may retry."""

    def __init__(self, message: str = "concurrent change; retry"):
        super().__init__(message)


def _translate(error: ClientError) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "") or ""
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(decode_item(error.response.get("Item")))
    if code == "TransactionCanceledException":
        raw = error.response.get("CancellationReasons") or []
        codes = [reason.get("Code", "None") for reason in raw]
        if any(c == "ValidationError" and "size" in (r.get("Message") or "").lower() for c, r in zip(codes, raw)):
            return PayloadTooLarge(TOO_LARGE)
        if "ConditionalCheckFailed" in codes:
            return ConditionFailed(reasons=[(c, decode_item(r.get("Item"))) for c, r in zip(codes, raw)])
        if "TransactionConflict" in codes:
            return ConcurrentChange()
        return error
    if code == "TransactionConflictException":
        return ConcurrentChange()
    if code == "ValidationException" and "size" in message.lower() and "item" in message.lower():
        return PayloadTooLarge(TOO_LARGE)
    return error


def call(operation: str, **kwargs: Any) -> dict[str, Any]:
    """One DynamoDB API call, translating conditional failures, conflicts and size limits."""
    try:
        return getattr(client(), operation)(**kwargs)
    except ClientError as error:
        raise _translate(error) from error


def confirmed(write: Callable[[], Any], key: dict[str, str], token: str) -> Any:
    """Run the commit write of an operation. When it fails without saying whether it was applied
    (a timeout or a lost reply on every attempt, a 5xx after botocore's retries), read the item it
    writes: carrying this request's token, it was applied, and that item is returned as the write's
    result (§2: past the commit point the answer is success); otherwise the failure stands."""
    try:
        return write()
    except (ConditionFailed, ConcurrentChange, ApiError):
        raise
    except Exception:
        try:
            item = get(key)
        except Exception:  # noqa: BLE001 - the store is out of reach: the first failure is the answer
            item = None
        if item is not None and item.get("op") == token:
            return {"Attributes": encode_item(item), "confirmed": True}
        raise


# ---------------------------------------------------------------- expressions


@dataclass
class Expression:
    """Placeholders for every name and value of a condition, update, key or filter expression."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def name(self, path: str | tuple[str, ...]) -> str:
        """An attribute name, or a document path given as a tuple of segments (map keys may hold any
        character, dots and NULs included) -> `#n0.#n1`."""
        parts = []
        for segment in (path if isinstance(path, tuple) else (path,)):
            placeholder = f"#n{len(self.names)}"
            self.names[placeholder] = segment
            parts.append(placeholder)
        return ".".join(parts)

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = encode(value)
        return placeholder

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.names:
            request["ExpressionAttributeNames"] = self.names
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        return request


class Raw(str):
    """An update-expression operand written verbatim (e.g. `#n3 + :v4`) instead of as a value."""


@dataclass
class Update:
    """One UpdateItem (or transactional Update): SET / REMOVE / ADD clauses and a condition built with
    the same Expression, so placeholders never collide."""

    key: dict[str, str]
    sets: dict[str | tuple[str, ...], Any] = field(default_factory=dict)
    removes: list[str | tuple[str, ...]] = field(default_factory=list)
    adds: dict[str, int] = field(default_factory=dict)
    copies: dict[str, str] = field(default_factory=dict)  # SET target = source (attribute to attribute)
    conditions: list[str] = field(default_factory=list)
    expr: Expression = field(default_factory=Expression)

    def request(self) -> dict[str, Any]:
        e = self.expr
        sets = [f"{e.name(p)} = {v if isinstance(v, Raw) else e.value(v)}" for p, v in self.sets.items()
                if v is not None]
        sets += [f"{e.name(target)} = {e.name(source)}" for target, source in self.copies.items()]
        removes = [e.name(p) for p in self.removes] + [e.name(p) for p, v in self.sets.items() if v is None]
        adds = [f"{e.name(p)} {e.value(v)}" for p, v in self.adds.items()]
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if removes:
            clauses.append("REMOVE " + ", ".join(removes))
        if adds:
            clauses.append("ADD " + ", ".join(adds))
        request = {"TableName": table_name(), "Key": encode_item(self.key), "UpdateExpression": " ".join(clauses)}
        if self.conditions:
            request["ConditionExpression"] = " AND ".join(f"({c})" for c in self.conditions)
        return e.apply(request)


# ---------------------------------------------------------------- plain operations


def get(key: dict[str, str]) -> dict[str, Any] | None:
    """Strongly consistent GetItem."""
    response = call("get_item", TableName=table_name(), Key=encode_item(key), ConsistentRead=True)
    return decode_item(response.get("Item"))


def get_many(keys: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Strongly consistent BatchGetItem of these keys (100 a call, DynamoDB's limit), by (PK, SK)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(keys), 100):
        request = {table_name(): {"Keys": [encode_item(key) for key in keys[start:start + 100]],
                                  "ConsistentRead": True}}
        while request:
            response = call("batch_get_item", RequestItems=request)
            for raw in response.get("Responses", {}).get(table_name(), []):
                item = decode_item(raw)
                found[(item["PK"], item["SK"])] = item
            request = response.get("UnprocessedKeys") or {}
    return found


def put(item: dict[str, Any], conditions: list[str] | None = None, expr: Expression | None = None) -> None:
    """PutItem under conditions; a failed one raises ConditionFailed with the old item."""
    request: dict[str, Any] = {"TableName": table_name(), "Item": encode_item(item),
                               "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if conditions:
        request["ConditionExpression"] = " AND ".join(f"({c})" for c in conditions)
    call("put_item", **(expr.apply(request) if expr else request))


def update(op: Update, token: str | None = None) -> dict[str, Any]:
    """UpdateItem returning the new item; a failed condition raises ConditionFailed with the old one.
    With `token`, the update is a commit point: an ambiguous failure is settled by reading the item."""
    request = op.request()
    request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    request["ReturnValues"] = "ALL_NEW"
    if token is None:
        return decode_item(call("update_item", **request).get("Attributes")) or {}
    response = confirmed(lambda: call("update_item", **request), op.key, token)
    return decode_item(response.get("Attributes")) or {}


def transact(actions: list[dict[str, Any]]) -> None:
    """TransactWriteItems of ≤ 100 actions made by the tx_* functions."""
    call("transact_write_items", TransactItems=actions)


def tx_update(op: Update) -> dict[str, Any]:
    request = op.request()
    request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Update": request}


def delete(key: dict[str, str], conditions: list[str], expr: Expression) -> None:
    """DeleteItem under conditions; a failed one raises ConditionFailed."""
    request: dict[str, Any] = {"TableName": table_name(), "Key": encode_item(key),
                               "ConditionExpression": " AND ".join(f"({c})" for c in conditions)}
    call("delete_item", **expr.apply(request))


def tx_put(item: dict[str, Any], conditions: list[str] | None = None, expr: Expression | None = None) -> dict[str, Any]:
    """A transaction's Put, under conditions (none: unconditional)."""
    request: dict[str, Any] = {"TableName": table_name(), "Item": encode_item(item)}
    if conditions:
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        request["ConditionExpression"] = " AND ".join(f"({c})" for c in conditions)
    return {"Put": expr.apply(request) if expr else request}


def tx_check(key: dict[str, str], conditions: list[str], expr: Expression) -> dict[str, Any]:
    request = {"TableName": table_name(), "Key": encode_item(key), "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
               "ConditionExpression": " AND ".join(f"({c})" for c in conditions)}
    return {"ConditionCheck": expr.apply(request)}


def tx_delete(key: dict[str, str]) -> dict[str, Any]:
    return {"Delete": {"TableName": table_name(), "Key": encode_item(key)}}


@dataclass
class Query:
    """A Query of the table or one of its indexes: one partition, an optional sort-key range (from
    inclusive, to exclusive, or after a key), an optional filter. Reads in pages sized to what is
    still wanted, so a page reads about what it returns."""

    pk: str
    index: str | None = None
    sk_from: str | None = None  # inclusive
    sk_to: str | None = None  # exclusive
    sk_after: str | None = None  # exclusive lower bound (a resume key)
    filters: list[str] = field(default_factory=list)
    consistent: bool = False
    forward: bool = True
    expr: Expression = field(default_factory=Expression)
    attributes: tuple[str, ...] = ()  # projection (empty: every attribute)
    start_key: dict[str, Any] | None = None  # resume after this item (its table and index keys)

    @property
    def _key_names(self) -> tuple[str, str]:
        if self.index is None:
            return "PK", "SK"
        if self.index.startswith("LSI"):
            return "PK", f"{self.index}SK"
        return f"{self.index}PK", f"{self.index}SK"

    def request(self) -> dict[str, Any]:
        e = self.expr
        pk_name, sk_name = self._key_names
        condition = f"{e.name(pk_name)} = {e.value(self.pk)}"
        lower = self.sk_from if self.sk_after is None else self.sk_after
        if self.sk_after is not None and self.sk_from is not None:
            lower = max(self.sk_after, self.sk_from)
        exclusive_lower = self.sk_after is not None and lower == self.sk_after
        # Bounds are checked by the caller (lib.rules): DynamoDB refuses BETWEEN hi AND lo.
        if isinstance(self.sk_to, int) and lower is not None:
            # A numeric sort key: BETWEEN low AND to - 1 (to stays exclusive).
            if lower > self.sk_to - 1:
                return {}
            condition += f" AND {e.name(sk_name)} BETWEEN {e.value(lower)} AND {e.value(self.sk_to - 1)}"
        elif lower is not None and self.sk_to is not None:
            if lower >= self.sk_to:
                return {}
            # BETWEEN is inclusive: every stored sort key continues past a bare bound ("<time>#<id>"),
            # so a key at exactly sk_to's prefix sorts after sk_to itself and stays excluded; an
            # exclusive lower bound is a full stored key, excluded by the filter-free trick below.
            condition += f" AND {e.name(sk_name)} BETWEEN {e.value(lower + (chr(0) if exclusive_lower else ''))}"
            condition += f" AND {e.value(self.sk_to)}"
        elif lower is not None:
            op = ">" if exclusive_lower else ">="
            condition += f" AND {e.name(sk_name)} {op} {e.value(lower)}"
        elif self.sk_to is not None:
            condition += f" AND {e.name(sk_name)} < {e.value(self.sk_to)}"
        request: dict[str, Any] = {"TableName": table_name(), "KeyConditionExpression": condition,
                                   "ScanIndexForward": self.forward}
        if self.index:
            request["IndexName"] = self.index
        if self.consistent:
            request["ConsistentRead"] = True
        if self.filters:
            request["FilterExpression"] = " AND ".join(f"({f})" for f in self.filters)
        if self.attributes:
            request["ProjectionExpression"] = ", ".join(e.name(a) for a in self.attributes)
        if self.start_key:
            request["ExclusiveStartKey"] = encode_item(self.start_key)
        return e.apply(request)

    def sort_value(self, item: dict[str, Any]) -> Any:
        """The item's sort key in the table or index this Query reads."""
        return item[self._key_names[1]]

    def key_of(self, item: dict[str, Any]) -> dict[str, Any]:
        """The key that resumes this Query right after `item` (table keys and the index's keys)."""
        names = {"PK", "SK", *self._key_names}
        return {name: item[name] for name in names}

    def pages(self, page_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every page of raw items (each page decoded), until the range is exhausted."""
        request = self.request()
        if not request:
            return
        while True:
            call_request = {**request, "Limit": page_size} if page_size else request
            response = call("query", **call_request)
            yield [decode_item(raw) for raw in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if not start:
                return
            request = {**request, "ExclusiveStartKey": start}

    def first(self, want: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to `want` items, and whether more exist. Reads `want + 1` at most per call (the extra
        item tells whether a next page exists), continuing only when a filter left it short; then each
        further call may read twice as many as the one before (what a selective filter rejects costs
        a few calls, not one per page: a call's items read stay within twice what the answer needed)."""
        request = self.request()
        if not request:
            return [], False
        found: list[dict[str, Any]] = []
        limit = 0
        while True:
            limit = max(want - len(found) + 1, min(2 * limit, MAX_QUERY_LIMIT))
            response = call("query", **{**request, "Limit": limit})
            found.extend(decode_item(raw) for raw in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if len(found) > want:
                return found[:want], True
            if not start:
                return found, False
            request = {**request, "ExclusiveStartKey": start}

    def all(self) -> list[dict[str, Any]]:
        return [item for page in self.pages() for item in page]


MAX_QUERY_LIMIT = 1000  # the largest Limit a filtered Query grows to (1 MB pages cap it anyway)


def delete_keys(keys: list[dict[str, str]]) -> int:
    """BatchWriteItem deletes, 25 keys a call, retrying unprocessed ones; returns the calls made."""
    calls = 0
    for start in range(0, len(keys), 25):
        request = {table_name(): [{"DeleteRequest": {"Key": encode_item(key)}} for key in keys[start:start + 25]]}
        while request:
            calls += 1
            request = call("batch_write_item", RequestItems=request).get("UnprocessedItems") or {}
    return calls
