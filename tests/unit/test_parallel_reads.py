"""lib.store.concurrency.parallel: reads sent at once, none outliving the request that sent them."""

import threading
import time

import pytest

from lib.store.concurrency import parallel


def test_results_come_in_the_order_of_the_calls():
    assert parallel(lambda: (time.sleep(0.05), 1)[1], lambda: 2, lambda: 3) == [1, 2, 3]


def test_a_failing_read_is_raised_only_once_every_other_read_has_finished():
    """A request sends several reads at once (a page's conversations, a task end's read beside its
    write); when one fails (404), the others must not go on after the request has answered (they
    would be billed for nothing, and be seen as the next request's calls)."""
    finished = threading.Event()

    def missing():
        raise LookupError("no such service")

    def slow_query():
        time.sleep(0.2)
        finished.set()
        return []

    with pytest.raises(LookupError):
        parallel(missing, slow_query)
    assert finished.is_set()
