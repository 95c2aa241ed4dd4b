"""`Idempotency-Key` on the POSTs that create something (§1 Retries), with Powertools Idempotency
storing its records in the project's table.

The key of a record is (tenant, operation, Idempotency-Key); the request body is the payload that a
repeat must match. Same key and body within 24 h: the first response is returned again and nothing
changes. Same key, other body: 409. A repeat while the first is still running: 409 as well. A request
that fails (4xx) leaves no record, so it can be corrected and retried with the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from lib import store
from lib.errors import Conflict
from lib.settings import settings

HEADER = "Idempotency-Key"


class _TablePersistence(DynamoDBPersistenceLayer):
    """Records as items of the single table: PK = the hashed key (spread over partitions, not one
    static partition as Powertools' composite-key default would), SK = a fixed marker."""

    def _get_key(self, idempotency_key: str) -> dict:
        return {"PK": {"S": f"IDEMPOTENCY#{idempotency_key}"}, "SK": {"S": "#IDEMPOTENCY"}}


config = IdempotencyConfig(
    event_key_jmespath="[tenant, operation, key]",
    payload_validation_jmespath="body",
    expires_after_seconds=settings().idempotency_expiration_seconds,
    raise_on_no_idempotency_key=False,
    use_local_cache=False,
)


@lru_cache(maxsize=4)
def _persistence(client: Any, table_name: str) -> _TablePersistence:
    return _TablePersistence(table_name=table_name, key_attr="PK", sort_key_attr="SK",
                             expiry_attr=store.TTL_ATTRIBUTE, boto3_client=client)


def _run(request: dict[str, Any], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return work()


def once(tenant: str, operation: str, key: str, body: Any, work: Callable[[], dict[str, Any]],
         context: Any = None) -> dict[str, Any]:
    """Run `work` (which returns a JSON-able reply description) at most once per idempotency key."""
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        config.register_lambda_context(context)  # a crashed request's record then expires with it
    runner = idempotent_function(data_keyword_argument="request", config=config,
                                 persistence_store=_persistence(store.client(), settings().table_name))(_run)
    try:
        return runner(request={"tenant": tenant, "operation": operation, "key": key, "body": body}, work=work)
    except IdempotencyValidationError:
        raise Conflict(f"{HEADER} '{key}' was used with a different body") from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict(f"a request with {HEADER} '{key}' is still in progress") from None
