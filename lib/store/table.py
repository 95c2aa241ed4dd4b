"""The table: the DynamoDB client (built at init), the error translation and the plain operations
(get, batch get, put, update, transactions, batch deletes) everything else uses; expressions and
Queries are built in lib.store.expressions.

Retries are botocore's "standard" mode with 3 attempts in all and short timeouts: DynamoDB answers in
milliseconds, API Gateway gives a request 29 s, and a write that timed out may have been applied, so
every write the project makes is safe to repeat (conditional, and recognisable by its `op` token,
see lib.store.services).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import JSONParser, ResponseParserFactory

from lib.errors import ApiError, Conflict, PayloadTooLarge
from lib.settings import in_lambda, settings
from lib.store.codec import decode_item, encode_item
from lib.store.concurrency import IN_FLIGHT

if TYPE_CHECKING:
    from lib.store.expressions import Expression, Update

RETRIES = {"mode": "standard", "total_max_attempts": 3}
# One connection per read in flight (lib.store.concurrency.IN_FLIGHT): a reader never waits for a
# connection another holds.
CLIENT_CONFIG = Config(retries=RETRIES, connect_timeout=2, read_timeout=5, max_pool_connections=IN_FLIGHT)
# Inside Lambda, no client-side parameter validation: DynamoDB validates every request itself (a
# malformed one is refused with a ValidationException where botocore would have raised
# ParamValidationError: either is the contract's 500), and botocore's walk of the parameters against
# the API model costs CPU on every call, most on transactions (docs/DESIGN.md, "Conditional writes,
# tokens and retries"). Everywhere else (the tests, the local run, `sam local`) botocore still checks
# every request the store builds, since moto lets some malformed ones through (a Query's Limit of 0).
DEPLOYED_CLIENT_CONFIG = CLIENT_CONFIG.merge(Config(parameter_validation=False))
TRANSACTION_LIMIT = 100  # actions in one TransactWriteItems (DynamoDB's limit)
BATCH_WRITE_LIMIT = 25  # requests in one BatchWriteItem
BATCH_GET_LIMIT = 100  # keys in one BatchGetItem
TOO_LARGE = "the record would exceed the store's item size limit (400 KB)"


def client_config() -> Config:
    """The settings of this process's DynamoDB client: DEPLOYED_CLIENT_CONFIG inside Lambda."""
    return DEPLOYED_CLIENT_CONFIG if in_lambda() else CLIENT_CONFIG


# The answers of the item operations, as botocore would return them when read as plain JSON: their
# members are attribute values (strings, numbers as strings, booleans, lists, maps: the project never
# stores a binary, whose base64 botocore would decode; lib.store.codec refuses one), keys, counts and
# consumed capacity, with no timestamp or blob to convert.
PLAIN_OUTPUTS = frozenset({"GetItemOutput", "BatchGetItemOutput", "QueryOutput", "PutItemOutput", "UpdateItemOutput",
                           "DeleteItemOutput", "TransactWriteItemsOutput", "BatchWriteItemOutput"})


class _ItemAnswers(JSONParser):
    """botocore's JSON parser, except that a successful answer of an item operation is the JSON as
    DynamoDB wrote it: botocore walks each answer against the API model, value by value, to convert
    blobs and timestamps, which these answers do not hold; for a page of items the walk cost more CPU
    than everything else the call does (docs/DESIGN.md, "Conditional writes, tokens and retries").
    Errors, and every other operation, are parsed as botocore parses them."""

    def _handle_json_body(self, raw_body: bytes, shape: Any) -> Any:
        if raw_body and shape is not None and shape.name in PLAIN_OUTPUTS:
            try:
                return json.loads(raw_body)
            except ValueError:
                pass  # not JSON: botocore's parse says so as it always does
        return super()._handle_json_body(raw_body, shape)


class _Parsers(ResponseParserFactory):
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return _ItemAnswers(**self._defaults)  # type: ignore[attr-defined]  # (botocore's; not in its stubs)
        return super().create_parser(protocol_name)


_SWAP = threading.Lock()  # one factory swap at a time: two interleaved would leave ours in place


def new_client() -> Any:
    """The DynamoDB client, built with its own response parsers (_ItemAnswers): botocore's session
    hands its parser factory to each client it builds, so the factory is swapped for this build only
    (under a lock: a client another thread builds meanwhile from the same session gets ours, which
    reads only these DynamoDB answers differently)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None
    with _SWAP:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        core = session._session  # the botocore session under boto3's default one
        usual = core.get_component("response_parser_factory")
        ours = _Parsers()
        ours.set_parser_defaults(**getattr(usual, "_defaults", {}))  # as botocore's, if any were set
        core.register_component("response_parser_factory", ours)
        try:
            return session.client("dynamodb", endpoint_url=endpoint, config=client_config())
        finally:
            core.register_component("response_parser_factory", usual)


# Built at init (import) wherever a region is configured (Lambda always), not on the first request:
# the init phase pays it, requests and SnapStart restores do not. Credentials resolve on first use.
_client: Any = new_client() if os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") else None


def client() -> Any:
    """The DynamoDB client of this process (honours AWS_ENDPOINT_URL_DYNAMODB)."""
    global _client
    if _client is None:
        _client = new_client()
    return _client


def reset_client() -> Any:
    """Build the client again (tests: inside a moto mock; the local run: after choosing the endpoint),
    and forget the other services' clients (`service_client`)."""
    global _client
    _client = new_client()
    _service_clients.clear()
    return _client


# Clients of the other services the store calls (S3 for export files, SQS for jobs), by the settings
# that choose their endpoint: building a botocore client costs milliseconds of CPU, which a warm
# function paid for every export file and every job it queued. Clients are thread-safe.
_service_clients: dict[tuple[str, ...], Any] = {}
_ENDPOINT_SETTINGS = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")


def service_client(service: Literal["s3", "sqs"]) -> Any:
    """This process's client of `service` ("s3", "sqs"), built on first use and kept while the region
    and endpoint settings (AWS_ENDPOINT_URL_<SERVICE> included) stay as they were. The key holds no
    credentials: a process that changes them (no function does; a test leaving a moto mock) calls
    reset_client."""
    key = (service, *(os.environ.get(name, "") for name in (*_ENDPOINT_SETTINGS, f"AWS_ENDPOINT_URL_{service.upper()}")))
    found = _service_clients.get(key)
    if found is None:
        found = _service_clients[key] = boto3.client(service, config=CLIENT_CONFIG)
    return found


def table_name() -> str:
    return settings().table_name


# ---------------------------------------------------------------- errors


class ConditionFailed(Exception):
    """A conditional write did not apply. `old` is the item as it was (None if it did not exist);
    for transactions, `reasons` holds one (code, old item or None) per action, in order."""

    def __init__(self, old: dict[str, Any] | None = None, reasons: list[tuple[str, dict[str, Any] | None]] | None = None):
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


def confirmed(write: Callable[[], Any], key: dict[str, str], token: str, mark: str = "op") -> Any:
    """Run the commit write of an operation. When it fails without saying whether it was applied
    (a timeout or a lost reply on every attempt, a 5xx after botocore's retries), read the item it
    writes: carrying this request's token (in `mark`), it was applied, and that item is returned as
    the write's result (§2: past the commit point the answer is success); otherwise the failure stands.
    The token must be this write's own: a token an earlier write of the item also carried would take
    that write for this one."""
    try:
        return write()
    except (ConditionFailed, ConcurrentChange, ApiError):
        raise
    except Exception:
        try:
            item = get(key)
        except Exception:  # the store is out of reach: the first failure is the answer
            item = None
        if item is not None and item.get(mark) == token:
            return {"Attributes": encode_item(item), "confirmed": True}
        raise


# ---------------------------------------------------------------- plain operations


def get(key: dict[str, str], names: frozenset[str] | None = None) -> dict[str, Any] | None:
    """Strongly consistent GetItem; with `names`, only those attributes are decoded."""
    return decode_item(get_stored(key), names)


def get_stored(key: dict[str, str]) -> dict[str, Any] | None:
    """Strongly consistent GetItem: the item as stored (attribute values), for a caller that decodes
    only what it uses (lib.store.items.decode)."""
    response = call("get_item", TableName=table_name(), Key=encode_item(key), ConsistentRead=True)
    item: dict[str, Any] | None = response.get("Item")
    return item


def get_many(keys: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Strongly consistent BatchGetItem of these keys (100 a call, DynamoDB's limit), by (PK, SK)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request = {table_name(): {"Keys": [encode_item(key) for key in keys[start:start + BATCH_GET_LIMIT]],
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


def delete(key: dict[str, str], conditions: list[str] | None = None, expr: Expression | None = None) -> None:
    """DeleteItem, under conditions if any; a failed one raises ConditionFailed."""
    request: dict[str, Any] = {"TableName": table_name(), "Key": encode_item(key)}
    if conditions:
        request["ConditionExpression"] = " AND ".join(f"({c})" for c in conditions)
    call("delete_item", **(expr.apply(request) if expr else request))


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


def tx_delete(key: dict[str, str], conditions: list[str] | None = None, expr: Expression | None = None
              ) -> dict[str, Any]:
    """A transaction's Delete, under conditions (none: unconditional)."""
    request: dict[str, Any] = {"TableName": table_name(), "Key": encode_item(key)}
    if conditions:
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        request["ConditionExpression"] = " AND ".join(f"({c})" for c in conditions)
    return {"Delete": expr.apply(request) if expr else request}


def delete_keys(keys: list[dict[str, str]]) -> int:
    """BatchWriteItem deletes, 25 keys a call, retrying unprocessed ones; returns the calls made."""
    calls = 0
    for start in range(0, len(keys), BATCH_WRITE_LIMIT):
        request = {table_name(): [{"DeleteRequest": {"Key": encode_item(key)}}
                                  for key in keys[start:start + BATCH_WRITE_LIMIT]]}
        while request:
            calls += 1
            request = call("batch_write_item", RequestItems=request).get("UnprocessedItems") or {}
    return calls
