"""How the store's operations meet concurrency: each write carries its request's context (`Write`:
tenant, clock reading, a token that recognises our own write after a lost reply), optimistic writes
that lose a race retry after a jittered pause, and independent reads run at once."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

ATTEMPTS = 30  # tries of an optimistic write that keeps losing races before it answers 409 "retry"
# Reads in flight at once, at most: the pool's threads, and the DynamoDB client's connections
# (lib.store.table.CLIENT_CONFIG). A customer page of 100 services reads its 100 conversations in
# one round trip; a bigger page, or a page of conversations that each need two Queries, in a few.
IN_FLIGHT = 100

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent reads at once (boto3 clients are thread-safe), at most IN_FLIGHT at a time;
    results in order. Threads are started as needed and kept (each idle one holds little memory)."""
    global _pool
    if len(calls) <= 1:
        return [call() for call in calls]
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="store")
    futures = [_pool.submit(c) for c in calls]
    wait(futures)  # all of them, also when one fails: no read of this request outlives it
    return [future.result() for future in futures]


def held(call: Callable[[], Any]) -> Callable[[], Any]:
    """`call` for `parallel` beside a write: its exception is returned, not raised, so that a read
    that fails does not turn a write committed at the same time into an error (the caller raises it
    only when it needs what was read)."""
    def run() -> Any:
        try:
            return call()
        except Exception as error:  # returned to the caller, who decides
            return error
    return run


def new_token() -> str:
    """A request's token: every item it writes carries it (`op`), so a retried write that meets the
    item recognises its own earlier attempt."""
    return os.urandom(8).hex()  # what secrets.token_hex(8) returns, without its two calls


def backoff(attempt: int) -> None:
    """Jittered pause before retrying an optimistic write that lost a race."""
    time.sleep(random.uniform(0, min(0.05, 0.002 * 2 ** min(attempt, 5))))  # not security: jitter


@dataclass
class Write:
    """One write request: its tenant, its clock reading and its token."""

    tenant: str
    now: int
    token: str = field(default_factory=new_token)
