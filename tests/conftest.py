"""Shared fixtures: a moto DynamoDB with the table built from template.yaml, a test client, and a
controllable clock."""

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
from lib.store import table as store_table  # noqa: E402
from lib.store.codec import decode_item  # noqa: E402
from local import embedded_dynamodb, template  # noqa: E402
from tests.apiclient import Api  # noqa: E402


@pytest.fixture
def table():
    """A fresh moto DynamoDB table, created from template.yaml."""
    embedded_dynamodb.faithful_updates()
    embedded_dynamodb.partition_scoped()
    with mock_aws():
        settings.settings.cache_clear()
        client = store_table.reset_client()
        template.create_table(client, os.environ["TABLE_NAME"])
        yield client
        store_table.reset_client()


@pytest.fixture
def api(table) -> Api:
    return Api()


@pytest.fixture
def items(table):
    """All stored items (for asserting what a request wrote)."""

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
