"""Which faults of the store's services pass by themselves (throttling, an internal error, a
timeout, a lost connection) and which do not: a maintenance job retries the first kind until it
finishes, and fails only on the second (lib.rules.jobs)."""

from __future__ import annotations

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from lib.store.table import ConcurrentChange

TRANSIENT_CODES = frozenset({
    "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded", "Throttling",
    "TooManyRequestsException", "InternalServerError", "InternalFailure", "InternalError", "ServiceUnavailable",
    "ServiceUnavailableException", "TransactionInProgressException", "TransactionConflictException",
    "SlowDown", "RequestTimeout", "RequestTimeoutException", "503", "500",
})


def transient(error: BaseException) -> bool:
    """Whether retrying the same step later can succeed without anyone changing anything."""
    if isinstance(error, ConcurrentChange | BotoConnectionError | HTTPClientError | TimeoutError | ConnectionError):
        return True
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code == "TransactionCanceledException":
            reasons = error.response.get("CancellationReasons") or []
            return any(r.get("Code") in ("ThrottlingError", "TransactionConflict") for r in reasons)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or (isinstance(status, int) and status >= 500)
    return False


def reason(error: BaseException) -> str:
    """What a failed job reports of its fault: the service's error code, never its message (which may
    quote keys, that is customer data)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "error"))
    return "internal error"
