"""Fixtures of every tier (tests/<tier>/ sees them all): a moto DynamoDB table built from
template.yaml (`table`), the in-process client (`api`), the stored items (`items`), the project's
clock made controllable (`frozen`), environment settings for one test (`environment`), a folder for
export files (`exports`).

One moto mock runs for a worker's whole session, started by the first test that needs it: starting
one costs a new boto3 session and client (~0.15 s of CPU), which per test was a third of the API
tier's time. Every test that asks for `table` still gets a table of its own: moto's backends are
reset (DynamoDB, S3, SQS: nothing of an earlier test is left) and the table is created again from
template.yaml, with a new client (so no hook a test registered survives it), ~10 ms.

Settings (read from the environment once, then cached) and cached grants are forgotten before and
after every test, after monkeypatch has put the environment back: a test that fails half-way leaks
nothing into the next one.
"""

from __future__ import annotations

import os

os.environ.update(
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    TABLE_NAME="context-services-test",
    PAGE_TOKEN_SECRET="test-secret",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_LOG_LEVEL=os.environ.get("TEST_LOG_LEVEL", "CRITICAL"),
    POWERTOOLS_SERVICE_NAME="context-services",
)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
os.environ.pop("AWS_PROFILE", None)

import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from lib import clock, settings  # noqa: E402
from lib.api import access  # noqa: E402
from lib.store import table as store_table  # noqa: E402
from lib.store.codec import decode_item  # noqa: E402
from local import embedded_dynamodb, template  # noqa: E402
from tests.support import Api  # noqa: E402


def _forget_settings() -> None:
    settings.settings.cache_clear()
    access.reset()


@pytest.fixture(autouse=True)
def fresh_settings():
    """Settings and grants read afresh by every test, and forgotten after it. Autouse fixtures are set
    up before the test's own (monkeypatch among them), so this teardown runs after monkeypatch has
    restored the environment."""
    _forget_settings()
    yield
    _forget_settings()


@pytest.fixture(scope="session")
def moto_session():
    """moto for the rest of the worker's session (DynamoDB with the fidelity patches the local run
    uses, S3, SQS)."""
    embedded_dynamodb.faithful_updates()
    embedded_dynamodb.partition_scoped()
    mock = mock_aws()
    mock.start()
    yield mock
    mock.stop()
    store_table.reset_client()


@pytest.fixture
def table(moto_session):
    """A fresh moto DynamoDB table, created from template.yaml (and nothing else in moto); the client
    the handlers use."""
    moto_session.reset()
    _forget_settings()
    client = store_table.reset_client()
    template.create_table(client, os.environ["TABLE_NAME"])
    yield client
    store_table.reset_client()


@pytest.fixture
def api(table) -> Api:
    return Api()


@pytest.fixture
def items(table):
    """All stored items, decoded (for asserting what a request wrote)."""

    def read() -> list[dict]:
        raw = table.scan(TableName=os.environ["TABLE_NAME"])["Items"]
        return [decode_item(item) for item in raw]

    return read


class Clock:
    """Moves the project's one clock (lib.clock.now_ms) in tests."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.now = clock.now_ms()
        monkeypatch.setattr(clock, "now_ms", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


@pytest.fixture
def frozen(monkeypatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def environment(monkeypatch):
    """`environment(NAME="value", OTHER=None)`: set (None: remove) variables for this test and read
    the settings again; put back after it, whatever happens."""

    def apply(**values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, str(value))
        _forget_settings()

    return apply


@pytest.fixture
def exports(tmp_path, environment):
    """EXPORT_DIR: export files of this test go to a folder of its own."""
    environment(EXPORT_DIR=str(tmp_path))
    return tmp_path
