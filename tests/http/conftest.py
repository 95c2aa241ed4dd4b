"""The HTTP tier's shared local server: one `python -m local.server` per worker session for every test
that does not need a server of its own (each uses its own customers and tenants), stopped with
SIGTERM at the end and checked to stop cleanly and leave no process behind."""

from __future__ import annotations

import pytest

from tests.support import descendants, start_server, stop_server


@pytest.fixture(scope="session")
def server():
    # A zero budget: a maintenance request does one page, then continues as a job (through the queue).
    process, info = start_server({"MAINTENANCE_BUDGET_MS": "0"})
    info["warm"] = descendants(process.pid)
    try:
        yield info
    finally:
        code = stop_server(process, info)
    assert code == 0
    assert any("stopped" in line for line in info["lines"]), "SIGTERM stops cleanly"
    assert not info["left"], f"processes left running: {info['left']}"
