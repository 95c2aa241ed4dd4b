"""The pieces that must agree with each other: code, OpenAPI document, template.yaml, events/."""

from __future__ import annotations

import json
import os
import re

import pytest

from local import openapi, template
from tests.apiclient import invoke

EVENTS = sorted((template.ROOT / "events").glob("*.json"))


def test_committed_openapi_matches_the_code():
    committed = openapi.DOCUMENT.read_text()
    assert committed == openapi.render(), "docs/openapi.json is stale: run `make openapi`"


def test_openapi_shows_real_status_codes():
    document = openapi.generate()
    codes = {(path, method): set(op["responses"]) for path, ops in document["paths"].items() for method, op in ops.items()}
    assert codes[("/services/start", "post")] >= {"201", "400", "413"}
    assert codes[("/services/{service_id}/end", "post")] >= {"204", "404", "409"}
    assert codes[("/services/{service_id}", "delete")] >= {"204", "404"}
    assert all("422" not in found for found in codes.values())
    assert document["paths"]["/services/{service_id}/extensions/{ext_name}"]["put"]["deprecated"] is True


# Catch-all routes: with IAM authorization on every method, API Gateway answers an unknown path
# "missing authentication token"; routing it to a function keeps 401 for missing credentials and
# the contract's 404 for unknown routes.
CATCH_ALL = {"/", "/{proxy+}"}


def _template_paths() -> set[str]:
    return {route.path for route in template.api_routes()} - CATCH_ALL


def test_every_documented_route_is_routed_by_the_template():
    documented = {openapi.BASE_PATH + path for path in openapi.generate()["paths"]}
    assert documented == _template_paths()


def test_template_routes_every_method_so_the_function_can_answer_405():
    assert {route.method for route in template.api_routes()} == {"ANY"}


def test_template_table_has_ttl_pitr_and_the_indexes_the_store_uses():
    from lib.store import keys as store

    props = template.load()["Resources"]["ContextTable"]["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": store.TTL_ATTRIBUTE, "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    names = {index["IndexName"] for index in props["GlobalSecondaryIndexes"]}
    assert names >= {store.OWNER_INDEX, store.OWNER_STATUS_INDEX, store.START_INDEX, store.END_INDEX}
    globals_ = template.load()["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"


def test_table_built_from_template_has_ttl(table):
    description = table.describe_time_to_live(TableName=os.environ["TABLE_NAME"])["TimeToLiveDescription"]
    assert description["AttributeName"] == "expire_at" and description["TimeToLiveStatus"] == "ENABLED"


def test_one_event_per_documented_route():
    operations = {op["operationId"] for ops in openapi.generate()["paths"].values() for op in ops.values()}
    assert {event.stem for event in EVENTS} == operations


@pytest.mark.parametrize("path", EVENTS, ids=[event.stem for event in EVENTS])
def test_each_event_reaches_its_handler(table, path):
    event = json.loads(path.read_text())
    handler = next(route.handler for route in template.api_routes() if route.path == event["resource"])
    reply = invoke(event, handler)
    assert reply.status < 500, reply.text
    if reply.status >= 400:
        # On an empty table the only refusal a well-formed sample event can meet is the 404 of the
        # service, state or task it names (a 400 would mean the sample itself is malformed).
        body = reply.json
        assert body["exception"] not in ("MethodNotAllowedException",) and not body["message"].startswith("no route")
        assert reply.status == 404 and body["exception"] == "NotFoundException", reply.text
        assert re.fullmatch(r"(service|state|task|job) \S+ not found", body["message"]), body["message"]
