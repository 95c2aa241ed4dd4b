"""`Idempotency-Key` (§1 Retries): the reply of a creating request is kept 24 h under (tenant,
operation, key), written IN THE SAME TRANSACTION as what the request creates.

Powertools Idempotency writes an "in progress" record, runs the function, then completes the record:
three steps, so a fault between the create and the completion answers 500 while the element exists,
and a retry after the in-progress window creates it a second time. Here the record is one more item
of the creating transaction: either both exist or neither does, and a retry finds the record.
A repeat with the same body replays the stored reply; another body is a 409; a repeat racing the
first meets the transaction conflict (409, "still in progress").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib.errors import Conflict
from lib.settings import settings
from lib.store import conditions as C
from lib.store import keys as K
from lib.store.expressions import Expression
from lib.store.items import from_plain
from lib.store.records import IdempotencyRecord
from lib.store.table import ConcurrentChange, ConditionFailed, call, tx_put

HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class StoredReply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class Replay(Exception):
    """The request was already handled: answer with the stored reply."""

    def __init__(self, reply: StoredReply):
        super().__init__("replay")
        self.reply = reply


@dataclass
class Claim:
    """One creating request's claim on its Idempotency-Key. `reply` turns the operation's result (an
    id, a list of composite results) into the reply that is stored with it."""

    tenant: str
    operation: str
    key: str
    body: Any
    now: int
    reply: Callable[[Any], StoredReply]

    @property
    def digest(self) -> str:
        return K.digest(self.tenant, self.operation, self.key)

    @property
    def payload(self) -> str:
        return K.digest(self.operation, self.body)

    def record_key(self) -> dict[str, str]:
        return K.idempotency_key(self.digest)

    def put_action(self, result: Any) -> dict[str, Any]:
        """Transaction action: the record of this request with the reply for `result`."""
        reply = self.reply(result)
        expires = self.now + settings().idempotency_expiration_seconds * 1000
        record = IdempotencyRecord(digest=self.digest, payload=self.payload, status=reply.status,
                                   body=json.dumps(reply.body, separators=(",", ":"), ensure_ascii=False),
                                   headers=reply.headers, expires_ms=expires, expire_at=expires // 1000 + 1)
        e = Expression()
        return tx_put(record.to_item(), C.free_or_expired(e, self.now), e)

    def settle(self, old: dict[str, Any] | None) -> None:
        """Given the record found under this key (decoded), raise Replay or Conflict if it is live."""
        record = from_plain(old) if old else None
        if not isinstance(record, IdempotencyRecord) or record.expires_ms < self.now:
            return
        if record.payload != self.payload:
            raise Conflict(f"{HEADER} '{self.key}' was used with a different request")
        raise Replay(StoredReply(record.status, json.loads(record.body), dict(record.headers)))

    def save(self, result: Any) -> None:
        """Write the record on its own (composite start: after its find-or-create steps)."""
        try:
            call("put_item", **self.put_action(result)["Put"])
        except ConditionFailed as failed:
            self.settle(failed.old)
        except ConcurrentChange:
            raise self.in_progress() from None

    def in_progress(self) -> Conflict:
        return Conflict(f"a request with {HEADER} '{self.key}' is still in progress")
