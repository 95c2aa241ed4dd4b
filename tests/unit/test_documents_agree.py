"""The pieces that must agree with each other: code, OpenAPI document, template.yaml (its routes, its
table, the permissions of its functions), events/."""

from __future__ import annotations

import json
import re

from local import openapi, template
from local.template import ROOT

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


# The journey viewer's static files (handlers/viewer.py) are pages, not operations of the API.
VIEWER = {"/viewer", "/viewer/{proxy+}"}


def _template_paths() -> set[str]:
    return {route.path for route in template.api_routes()} - CATCH_ALL - VIEWER


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


def test_one_event_per_documented_route():
    operations = {op["operationId"] for ops in openapi.generate()["paths"].values() for op in ops.values()}
    assert {event.stem for event in EVENTS} == operations


def test_schema_names_are_ones_a_generator_keeps():
    """Names such as `CreateHeadersWithHeaderAliases` (an artefact of how headers are declared) or
    names with characters a generator rewrites end up as odd class names in every generated client."""
    schemas = json.loads(openapi.DOCUMENT.read_text()).get("components", {}).get("schemas", {})
    odd = [name for name in schemas if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name) or "HeaderAliases" in name]
    assert odd == [], f"schema names no client should carry: {odd}"


# ---------------------------------------------------------------- the functions' permissions (template.yaml) cover the calls the code makes


PROJECT_DIRS = ("lib", "handlers")


# What each DynamoDB API call needs in IAM (a transaction needs the actions of its parts).
IAM_ACTIONS = {
    "get_item": {"GetItem"}, "batch_get_item": {"BatchGetItem"}, "transact_get_items": {"GetItem"},
    "put_item": {"PutItem"}, "update_item": {"UpdateItem"}, "delete_item": {"DeleteItem"}, "query": {"Query"},
    "scan": {"Scan"}, "batch_write_item": {"BatchWriteItem", "PutItem", "DeleteItem"},
    "transact_write_items": {"PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"},
}


def test_every_function_may_make_every_dynamodb_call_the_store_makes():
    """The store is shared by every function, so each function's role must allow all its calls;
    otherwise a route works locally and answers AccessDenied (500) when deployed."""
    calls = set()
    for path in (ROOT / "lib").rglob("*.py"):
        calls |= set(re.findall(r"""\b(?:call|_call)\(\s*["']([a-z_]+)["']""", path.read_text()))
        calls |= set(re.findall(r"""\.(get_item|put_item|update_item|delete_item|query|batch_get_item|"""
                                r"""batch_write_item|transact_write_items|transact_get_items|scan)\(""", path.read_text()))
    needed = set().union(*(IAM_ACTIONS[c] for c in calls if c in IAM_ACTIONS))
    assert {"GetItem", "Query", "PutItem"} <= needed
    for name, resource in template.load()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        module = ROOT / (resource["Properties"]["Handler"].rsplit(".", 1)[0].replace(".", "/") + ".py")
        if not re.search(r"^(from|import) lib\b", module.read_text(), re.MULTILINE):
            continue  # the viewer function: no store, no table access (tests/unit/test_viewer_function.py)
        if resource["Properties"]["Handler"].startswith("handlers.feed."):
            continue  # the change feed's publisher reads stream records, never the table (its own test)
        allowed = {action.split(":", 1)[1] for policy in resource["Properties"].get("Policies", [])
                   for statement in policy.get("Statement", []) for action in statement["Action"]
                   if action.startswith("dynamodb:")}
        assert needed <= allowed, f"{name} lacks {sorted(needed - allowed)}"


S3_ACTIONS = {"put_object": "PutObject", "get_object": "GetObject", "delete_object": "DeleteObject",
              "create_multipart_upload": "PutObject", "upload_part": "PutObject", "complete_multipart_upload": "PutObject",
              "abort_multipart_upload": "AbortMultipartUpload", "list_parts": "ListMultipartUploadParts",
              "head_object": "GetObject"}


def test_the_maintenance_function_may_make_its_s3_and_sqs_calls():
    source = "".join(path.read_text() for folder in PROJECT_DIRS for path in (ROOT / folder).rglob("*.py"))
    s3_needed = {S3_ACTIONS[c] for c in re.findall(r"\.(" + "|".join(S3_ACTIONS) + r")\(", source)}
    sqs_needed = {"SendMessage"} if ".send_message(" in source else set()
    function = template.load()["Resources"]["MaintenanceFunction"]["Properties"]
    allowed = {action for policy in function.get("Policies", []) for statement in policy.get("Statement", [])
               for action in statement["Action"]}
    assert {f"s3:{a}" for a in s3_needed} | {f"sqs:{a}" for a in sqs_needed} <= allowed
    assert s3_needed  # exports write to S3 when deployed
    jobs = template.load()["Resources"]["MaintenanceJobSource"]["Properties"]  # the job queue's event source mapping
    assert jobs["BatchSize"] == 1 and jobs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert jobs["FunctionName"] == {"Ref": "MaintenanceFunction.Alias"}
