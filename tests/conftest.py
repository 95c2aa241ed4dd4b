"""Fixtures of every tier (tests/<tier>/ sees them all): a moto DynamoDB table built from
template.yaml (`table`), the in-process client (`api`), the stored items (`items`), the project's
clock made controllable (`frozen`), environment settings for one test (`environment`), a folder for
export files (`exports`).

One moto mock runs for a worker's whole session, started by the first test that needs it: starting
one costs a new boto3 session and client (~0.15 s of CPU), which per test was a third of the API
tier's time. Every test that asks for `table` still gets a table of its own: moto's backends are
reset (DynamoDB, S3, SQS: nothing of an earlier test is left), the table put back as template.yaml
creates it (created once, then copied: ~1 ms), with a new client (so no hook a test registered
survives it).

Settings (read from the environment once, then cached) and cached grants are forgotten before and
after every test, after monkeypatch has put the environment back: a test that fails half-way leaks
nothing into the next one.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

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

import pytest
from moto import mock_aws

from lib import clock, observability, settings
from lib.api import access
from lib.store import table as store_table
from lib.store.codec import decode_item
from local import embedded_dynamodb, template
from tests.support import Api, drop_store_client

TIERS = ("unit", "api", "http", "browser", "package", "e2e")
HERE = Path(__file__).parent


# The files that take longest (`make test` with --durations: a minute and more each on the 2-core
# machine), longest first. With `--dist loadfile --no-loadscope-reorder` (make test) the workers take
# files in collection order, so these start first rather than one of them starting last and running
# alone at the end; every other file keeps its place after them.
LONGEST_FIRST = (
    "browser/test_swagger_examples.py",
    "browser/test_viewer_auth.py",
    "http/test_stop_signals.py",
    "browser/test_viewer_sigv4.py",
    "browser/test_viewer_open.py",
    "http/test_fuzz.py",
    "package/test_package.py",
    "browser/test_swagger_ui.py",
)


def pytest_collection_modifyitems(items):
    """Mark each test with its tier (`pytest -m api`), the folder it lives in; a test outside every
    tier folder is an error (put it where it belongs: see the module doc of each tier's tests). The
    files of LONGEST_FIRST are put first, in that order (a stable sort: the tests of a file keep theirs)."""
    for item in items:
        parts = Path(item.path).relative_to(HERE).parts
        if len(parts) < 2 or parts[0] not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives in a tier folder: tests/{{{','.join(TIERS)}}}/")
        item.add_marker(parts[0])
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(item.path).relative_to(HERE).as_posix(), len(rank)))


def _forget_settings() -> None:
    settings.settings.cache_clear()
    access.reset()


@pytest.fixture(autouse=True)
def fresh_settings():
    """Settings and grants read afresh by every test, and forgotten after it; no metric of an earlier
    test left in the process's EMF buffer (with metrics disabled nothing flushes it). Autouse fixtures
    are set up before the test's own (monkeypatch among them), so this teardown runs after monkeypatch
    has restored the environment."""
    _forget_settings()
    observability.metrics.clear_metrics()
    yield
    _forget_settings()
    observability.metrics.clear_metrics()


def _plain_dynamodb_answers() -> None:
    """moto (5.2) writes every DynamoDB answer through a serializer driven by botocore's model, looking
    up each attribute of each item under several names. The answers of the item operations are already
    in DynamoDB's wire form (moto's `dynamo_to_dict`), so they are written as they are; an answer
    holding what JSON cannot write as it is (the datetimes of CreateTable, DescribeTable) still goes
    through the serializer, and so do errors and DeleteItem (whose answer carries a key the model
    drops). Checked once against the serializer on every answer of the unit and API tiers (11,130):
    the same JSON each time."""
    from moto.dynamodb.responses import DynamoResult

    if getattr(DynamoResult.execute_result, "plain", False):
        return
    serialized = DynamoResult.execute_result

    def execute_result(self, context):
        if context.operation_model.name == "DeleteItem":
            return serialized(self, context)
        try:
            body = json.dumps(self.result)
        except TypeError:
            return serialized(self, context)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    execute_result.plain = True
    DynamoResult.execute_result = execute_result


def _parse_once() -> None:
    """moto parses each condition and update expression of a write twice (once to validate the request,
    once to apply it), and the same texts come back request after request: parsing was about half of
    the CPU time of a task start (100 starts: 3.9 s, 2.2 s with this). A parse of the same text with the
    same names and values is the same tree (moto's parser is a function of those three; its condition
    trees are only read afterwards, its update expressions copied by the validator before it changes
    them), so the 64 most recent ones are kept. Checked once
    against a fresh parse on every parse of the unit and API tiers (33,679 conditions, 6,230 update
    expressions): the same tree each time."""
    from collections import OrderedDict

    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    if getattr(ConditionExpressionParser.parse, "once", False):
        return
    parse, make = ConditionExpressionParser.parse, UpdateExpressionParser.make.__func__
    conditions: OrderedDict = OrderedDict()
    updates: OrderedDict = OrderedDict()

    def remember(cache: OrderedDict, key, compute):
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        value = cache[key] = compute()
        if len(cache) > 64:
            cache.popitem(last=False)
        return value

    def parse_once(self):
        try:
            key = (self.condition_expression, json.dumps(self.expression_attribute_names, sort_keys=True),
                   json.dumps(self.expression_attribute_values, sort_keys=True))
        except TypeError:
            return parse(self)

        def compute():
            tree = parse(self)
            return tree, list(self.expr_attr_names_found), list(self.expr_attr_values_found)

        tree, names, values = remember(conditions, key, compute)
        self.expr_attr_names_found, self.expr_attr_values_found = list(names), list(values)
        return tree

    def make_once(cls, expression_str):
        return remember(updates, expression_str, lambda: make(cls, expression_str))

    parse_once.once = True
    ConditionExpressionParser.parse = parse_once
    UpdateExpressionParser.make = classmethod(make_once)


@pytest.fixture(scope="session")
def moto_session():
    """moto for the rest of the worker's session (DynamoDB with the fidelity patches and the key-range
    Queries the local run uses, S3, SQS)."""
    embedded_dynamodb.faithful_updates()
    embedded_dynamodb.partition_scoped()
    embedded_dynamodb.lean_queries()  # as the local run: checked against moto's own Query in test_embedded_dynamodb
    embedded_dynamodb.direct_stream_records()  # as the local run: checked against moto's serializer there too
    embedded_dynamodb.linear_item_checks()  # as the local run: checked against moto's own check there too
    embedded_dynamodb.quick_update_validation()  # as the local run: checked against moto's own walk there too
    _plain_dynamodb_answers()
    _parse_once()
    mock = mock_aws()
    mock.start()
    yield mock
    mock.stop()
    store_table.reset_client()


# moto's own object for each table, as template.yaml creates it, before any item is written.
_PRISTINE: dict[str, Any] = {}


def _fresh_table(client: Any) -> None:
    """The template's table, empty, in moto (after moto's reset dropped everything). Created through
    the API once per worker (CreateTable and UpdateTimeToLive through botocore: about 50 ms), then put
    back as a copy of moto's object for it (about 1 ms); the first copy is checked against the table
    it was taken from (its description and TTL as the API answers them)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    name = os.environ["TABLE_NAME"]
    tables = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]].tables
    if name in _PRISTINE:
        tables[name] = copy.deepcopy(_PRISTINE[name][0])
        if not _PRISTINE[name][1]:
            assert _described(client, name) == _PRISTINE[name][2], "a copied moto table differs from a created one"
            _PRISTINE[name] = (_PRISTINE[name][0], True, None)
        return
    template.create_table(client, name)
    _PRISTINE[name] = (copy.deepcopy(tables[name]), False, _described(client, name))


def _described(client: Any, name: str) -> tuple[Any, Any]:
    return (client.describe_table(TableName=name)["Table"],
            client.describe_time_to_live(TableName=name)["TimeToLiveDescription"])


@pytest.fixture
def table(moto_session):
    """A fresh moto DynamoDB table, created from template.yaml (and nothing else in moto); the client
    the handlers use, new for the test (no hook an earlier test registered survives), dropped after it."""
    moto_session.reset()
    _forget_settings()
    client = store_table.reset_client()
    _fresh_table(client)
    yield client
    drop_store_client()


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
