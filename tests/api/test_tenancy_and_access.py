"""Tenancy (§1 tenancy headers) and who may call (§1 "Access when deployed", §2 401 / 403), through the
real `lambda_handler` of each route on moto: tenants and groups see only their own; with access
control on, callers are identified as API Gateway sets them after IAM authentication and every route
x role x granted / other tenant is decided before any data is touched (only the grant lookup reaches
DynamoDB, and only when the grant is not cached); an allowed request gets its route's own answer."""

from __future__ import annotations

import json
import os
import re

import pytest
from botocore.exceptions import ClientError

from lib import settings as settings_module
from lib.api import access
from lib.store.keys import grant_key
from local.template import ROOT
from tests.support import (
    assert_error,
    element_ids,
    event_for,
    invoke,
)

# ---------------------------------------------------------------- tenancy


def test_tenants_and_groups_are_isolated(api):
    tenant_a = {"ContactCenterId": "cc-a"}
    group = {"ContactCenterId": "cc-a", "GroupId": "g.1"}
    service_id = api.post("/services/start", {"customer_id": "c"}, headers=tenant_a).json["service_id"]
    assert api.get(f"/services/{service_id}", headers=tenant_a).status == 200
    for other in ({}, {"ContactCenterId": "cc-b"}, group):
        assert_error(api.get(f"/services/{service_id}", headers=other), 404, "NotFoundException")
        assert_error(api.post(f"/services/{service_id}/end", {}, headers=other), 404, "NotFoundException")
        assert_error(api.delete(f"/services/{service_id}", headers=other), 404, "NotFoundException")
        assert_error(api.put(f"/services/{service_id}", {"ttl": 1}, headers=other), 404, "NotFoundException")
        assert_error(api.post(f"/customers/x/services/{service_id}", headers=other), 404, "NotFoundException")
        assert api.get("/customers/c/services", headers=other).json == []
    assert element_ids(api.get("/customers/c/services", headers=tenant_a)) == [service_id]


@pytest.mark.parametrize("headers", [{"ContactCenterId": "has space"}, {"GroupId": "x" * 65},
                                     {"ContactCenterId": "a#b"}, {"ContactCenterId": ""}])
def test_bad_tenancy_headers_are_400(api, items, headers):
    reply = api.post("/services/start", {"customer_id": "c"}, headers=headers)
    assert_error(reply, 400, "ValidationException")
    assert items() == []


def test_tenancy_headers_are_case_insensitive(api):
    service_id = api.post("/services/start", {"customer_id": "c"},
                          headers={"contactcenterid": "lower", "groupid": "g"}).json["service_id"]
    assert api.get(f"/services/{service_id}", headers={"ContactCenterId": "lower", "GroupId": "g"}).status == 200
    assert_error(api.get(f"/services/{service_id}"), 404, "NotFoundException")


def test_same_millisecond_in_two_tenants_gives_two_working_services(api, frozen):
    """Service ids are unique per (tenant, group); the random bits do not come from `random`, whose
    state SnapStart restores share."""
    import random

    made = []
    for tenant in ("t1", "t2"):
        random.seed(1234)
        reply = api.post("/services/start", {"customer_id": "same"}, headers={"ContactCenterId": tenant})
        assert reply.status == 201
        made.append(reply.json["service_id"])
    assert made[0] != made[1], "same millisecond and same `random` state gave the same id"
    for tenant, sid in zip(("t1", "t2"), made):
        listed = api.get("/customers/same/services", headers={"ContactCenterId": tenant}).json
        assert [s["service_id"] for s in listed] == [sid]


# ---------------------------------------------------------------- access control


ACCOUNT = "111122223333"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/admin"
SUPERVISOR_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/supervisors/bob"
SUPERVISOR = f"arn:aws:iam::{ACCOUNT}:role/supervisors"
UNKNOWN = f"arn:aws:iam::{ACCOUNT}:user/mallory"
GRANTED = {"ContactCenterId": "acme", "GroupId": "sales"}
OTHER_TENANTS = {"other tenant": {"ContactCenterId": "globex", "GroupId": "sales"},
                 "other group": {"ContactCenterId": "acme", "GroupId": "marketing"},
                 "no group": {"ContactCenterId": "acme"}}
# Which of the cases above each role's grant covers (written out, not computed by the code under test).
GRANTED_TENANTS = {"Administrator": ("granted", "no group"), "Supervisor": ("granted", "other group", "no group")}
CALLERS = {"Administrator": ADMIN, "Supervisor": SUPERVISOR_SESSION, "unknown": UNKNOWN, "none": None}
# The contract's maintenance routes (§8), routed by template.yaml to MaintenanceFunction.
MAINTENANCE = [("GET", "/maintenance/services/stream"), ("POST", "/maintenance/services/files"),
               ("POST", "/maintenance/purge"), ("GET", "/maintenance/jobs/{job_id}")]
SAMPLE_PARAMETERS = {"service_id": "123", "state_id": "1", "task_id": "1", "ext_name": "note", "customer_id": "c-1",
                     "contact_key": "k-1", "job_id": "1"}


def _operations() -> list[tuple[str, str]]:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    documented = [(method.upper(), path) for path, ops in document["paths"].items() for method in ops]
    return documented + [op for op in MAINTENANCE if op not in documented] + [("GET", "/no/such/route")]


OPERATIONS = _operations()


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PARAMETERS[m.group(1)], path)


class DynamoCalls:
    """Every DynamoDB call of the functions' client (botocore hook), with its key when it has one."""

    def __init__(self, client):
        self.calls: list[tuple[str, dict]] = []
        client.meta.events.register("provide-client-params.dynamodb.*", self._record)

    def _record(self, params, model, **_):
        self.calls.append((model.name, params.get("Key") or {}))

    def data_calls(self) -> list[str]:
        """Calls other than the grant lookup."""
        return [name for name, key in self.calls
                if not (name == "GetItem" and key.get("PK", {}).get("S", "").startswith("ACCESS#"))]

    def grant_lookups(self) -> int:
        return len(self.calls) - len(self.data_calls())


def _put_grant(client, principal: str, role: str, tenants: list[str]) -> None:
    client.put_item(TableName=os.environ["TABLE_NAME"], Item={
        **{name: {"S": value} for name, value in grant_key(principal).items()}, "type": {"S": "grant"},
        "role": {"S": role}, "tenants": {"L": [{"S": t} for t in tenants]}})


@pytest.fixture
def enforced(table, environment):
    """Access control on, grants in the table: Administrator of acme/sales and acme/ (no group);
    Supervisor (an IAM role, called through an assumed-role session) of every group of acme."""
    environment(ACCESS_MODE="iam")
    _put_grant(table, ADMIN, "Administrator", ["acme/sales", "acme/"])
    _put_grant(table, SUPERVISOR, "Supervisor", ["acme/*"])
    return DynamoCalls(table)


def _call(method: str, path: str, principal: str | None, headers: dict[str, str], body=None):
    event, handler = event_for(method, path, {} if body is None and method in ("POST", "PUT") else body, headers)
    if principal is not None:
        event["requestContext"]["identity"] = {"userArn": principal, "sourceIp": "10.0.0.1"}
    return invoke(event, handler)


def _expected(role: str, method: str, tenant_granted: bool) -> tuple[int, str] | None:
    """(status, exception) of a refusal, None when the request must reach its route."""
    if role == "none":
        return 401, "UnauthorizedException"
    if role == "unknown" or not tenant_granted:
        return 403, "ForbiddenException"
    if role == "Supervisor" and method != "GET":
        return 403, "ForbiddenException"
    return None


def _route_answer(environment, method: str, path: str, headers: dict[str, str]):
    """What the route answers this request with access control off (the local run's default): the
    answer an allowed caller must get. It comes from the route itself (not 401 / 403, not the
    resolver's 405 or "no route" 404, except for the path no route takes) and is not a failure (5xx)."""
    environment(ACCESS_MODE=None)
    try:
        reply = _call(method, path, None, headers)
    finally:
        environment(ACCESS_MODE="iam")
    assert reply.status < 500, f"{method} {path}: {reply.text}"
    assert reply.status not in (401, 403), f"{method} {path}: {reply.text}"
    if reply.status >= 400:
        assert reply.json["exception"] != "MethodNotAllowedException", f"{method} {path}: {reply.text}"
        assert reply.json["message"].startswith("no route") == (path == "/no/such/route"), reply.text
    return reply


def test_granted_requests_read_and_write_their_tenant_and_nothing_else(enforced):
    created = _call("POST", "/services/start", ADMIN, GRANTED, {"customer_id": "c-9", "service_type": "billing"})
    assert created.status == 201
    service_id = created.json["service_id"]
    assert _call("GET", f"/services/{service_id}", SUPERVISOR_SESSION, GRANTED).status == 200
    refused = _call("GET", f"/services/{service_id}", SUPERVISOR_SESSION, OTHER_TENANTS["other tenant"])
    assert refused.status == 403  # refused for the tenant, before anyone looks for the service
    assert _call("DELETE", f"/services/{service_id}", SUPERVISOR_SESSION, GRANTED).status == 403
    assert _call("GET", f"/services/{service_id}", ADMIN, GRANTED).status == 200  # still there
    assert _call("DELETE", f"/services/{service_id}", ADMIN, GRANTED).status == 204


def test_grant_is_looked_up_once_then_cached(enforced, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(access.time, "monotonic", lambda: clock[0])
    for _ in range(3):
        assert _call("GET", "/services/123", ADMIN, GRANTED).status == 404
    assert enforced.grant_lookups() == 1  # the hot path costs no extra round trip
    clock[0] += 61
    _call("GET", "/services/123", ADMIN, GRANTED)
    assert enforced.grant_lookups() == 2


def test_unknown_principals_are_cached_briefly_and_a_new_grant_is_seen(enforced, table, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(access.time, "monotonic", lambda: clock[0])
    assert _call("GET", "/services/123", UNKNOWN, GRANTED).status == 403
    assert _call("GET", "/services/123", UNKNOWN, GRANTED).status == 403
    assert enforced.grant_lookups() == 1
    _put_grant(table, UNKNOWN, "Supervisor", ["acme/sales"])
    clock[0] += 11
    assert _call("GET", "/services/123", UNKNOWN, GRANTED).status == 404


def test_a_revoked_grant_stops_working_once_the_cache_expires(enforced, table, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(access.time, "monotonic", lambda: clock[0])
    assert _call("GET", "/services/123", ADMIN, GRANTED).status == 404
    table.delete_item(TableName=os.environ["TABLE_NAME"],
                      Key={name: {"S": value} for name, value in grant_key(ADMIN).items()})
    clock[0] += 61
    assert _call("GET", "/services/123", ADMIN, GRANTED).status == 403


def test_every_value_of_a_repeated_or_recased_tenancy_header_must_be_granted(enforced):
    event, handler = event_for("GET", "/services/123", headers={"contactcenterid": "acme", "GroupId": "sales"})
    event["multiValueHeaders"]["ContactCenterId"] = ["acme", "globex"]
    event["requestContext"]["identity"] = {"userArn": ADMIN}
    reply = invoke(event, handler)
    assert reply.status == 403 and "globex" in reply.json["message"]
    assert enforced.data_calls() == []


def test_tenancy_headers_are_matched_whatever_their_case(enforced):
    reply = _call("GET", "/services/123", ADMIN, {"contactcenterid": "acme", "GROUPID": "sales"})
    assert reply.status == 404 and reply.json["exception"] == "NotFoundException"


def test_records_that_are_not_valid_grants_grant_nothing(enforced, table):
    for principal, role, tenants in ((UNKNOWN, "Owner", ["acme/sales"]), (f"{UNKNOWN}2", "Administrator", ["acme"])):
        _put_grant(table, principal, role, tenants)
        assert _call("GET", "/services/123", principal, GRANTED).status == 403


def test_a_failed_grant_lookup_is_the_contracts_500_not_a_crash(enforced, monkeypatch):
    def broken(self, principal):
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "GetItem")

    monkeypatch.setattr(access.TableGrants, "lookup", broken)
    reply = _call("GET", "/services/123", ADMIN, GRANTED)
    assert reply.status == 500 and reply.json["exception"] == "InternalException"
    assert "request id" in reply.json["message"] and "boom" not in reply.json["message"]


def test_open_when_access_control_is_off(table):
    assert settings_module.settings().access_mode == "off"
    assert _call("GET", "/services/123", None, {}).status == 404


# ---------------------------------------------------------------- the matrix: every route x caller x tenant


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_route_role_tenant_matrix(enforced, environment, method, path):
    """Every role (and no / an unknown caller) x the granted tenant and three it was not granted: a
    refusal is decided before any data is touched; an allowed request gets its route's own answer, the
    one it gets with access control off (none of the sample requests changes anything)."""
    concrete = _concrete(path)
    answers = {tenant: _route_answer(environment, method, concrete, headers)
               for tenant, headers in {"granted": GRANTED, **OTHER_TENANTS}.items()}
    for role, principal in CALLERS.items():
        for tenant in ("granted", *OTHER_TENANTS):
            case = f"{role}, {tenant}"
            headers = GRANTED if tenant == "granted" else OTHER_TENANTS[tenant]
            enforced.calls.clear()
            reply = _call(method, concrete, principal, headers)
            expected = _expected(role, method, tenant in GRANTED_TENANTS.get(role, ()))
            if expected is None:
                assert (reply.status, reply.json) == (answers[tenant].status, answers[tenant].json), \
                    f"{case}: {reply.status} {reply.text}, not the route's {answers[tenant].status} {answers[tenant].text}"
            else:
                assert (reply.status, reply.json["exception"]) == expected, f"{case}: {reply.text}"
                assert enforced.data_calls() == [], f"{case}: a refused request touched data"
                assert enforced.grant_lookups() <= 1, case


# ---------------------------------------------------------------- local enforcing mode (AUTH=on)


def test_local_enforcing_mode_reads_grants_from_a_file_and_sees_edits(table, tmp_path, environment):
    grants_file = tmp_path / "grants.json"
    grants_file.write_text(json.dumps({"grants": [
        {"principal": "arn:aws:iam::000000000000:user/alice", "role": "Supervisor", "tenants": ["acme/sales"]}]}))
    environment(AUTH="on", GRANTS_FILE=str(grants_file))
    alice = "arn:aws:iam::000000000000:user/alice"
    assert _call("GET", "/services/123", alice, GRANTED).status == 404
    assert _call("POST", "/services/start", alice, GRANTED, {"customer_id": "c"}).status == 403
    assert _call("GET", "/services/123", None, GRANTED).status == 401
    grants_file.write_text(json.dumps({"grants": [
        {"principal": alice, "role": "Administrator", "tenants": ["acme/sales"]}]}))
    os.utime(grants_file, (1, 1))  # a new mtime even within the same clock tick
    access.reset()  # the cache, not the file, decides how soon an edit is seen; skip the wait
    assert _call("POST", "/services/start", alice, GRANTED, {"customer_id": "c"}).status == 201


# ---------------------------------------------------------------- scripts/grants.py


def test_grants_script_gives_and_revokes_what_the_check_reads(enforced, table, capsys):
    from scripts import grants

    role = f"arn:aws:iam::{ACCOUNT}:role/teams/desk"  # a role with a path: stored without it
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/desk/agent-7"
    run = ["--table", os.environ["TABLE_NAME"]]
    assert grants.main(["add", role, "--role", "Supervisor", "--tenant", "acme/sales", *run]) == 0
    assert grants.main(["add", role, "--tenant", "globex/", *run]) == 0  # keeps the role, adds a tenant
    assert _call("GET", "/services/123", session, GRANTED).status == 404
    assert _call("GET", "/services/123", session, {"ContactCenterId": "globex"}).status == 404
    capsys.readouterr()
    assert grants.main(["list", *run]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"principal": f"arn:aws:iam::{ACCOUNT}:role/desk", "role": "Supervisor",
            "tenants": ["acme/sales", "globex/"]} in listed
    assert grants.main(["revoke", role, "--tenant", "globex/", *run]) == 0
    access.reset()
    assert _call("GET", "/services/123", session, {"ContactCenterId": "globex"}).status == 403
    assert _call("GET", "/services/123", session, GRANTED).status == 404
    assert grants.main(["revoke", session, *run]) == 0
    access.reset()
    assert _call("GET", "/services/123", session, GRANTED).status == 403
