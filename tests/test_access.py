"""Who may call (contract §1 "Access when deployed", §2 401 / 403), through the real `lambda_handler`
of each route with synthetic caller identities in the request context, as API Gateway sets them
after IAM authentication: every route x role x granted / other tenant, decided before any data is
touched (only the grant lookup reaches DynamoDB, and only when the grant is not cached)."""

from __future__ import annotations

import importlib
import json
import os
import re

import pytest
from botocore.exceptions import ClientError

from lib import settings as settings_module
from lib.api import access
from lib.store.keys import grant_key
from local.template import ROOT
from tests.apiclient import event_for, invoke

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
def enforced(table, monkeypatch):
    """Access control on, grants in the table: Administrator of acme/sales and acme/ (no group);
    Supervisor (an IAM role, called through an assumed-role session) of every group of acme."""
    monkeypatch.setenv("ACCESS_MODE", "iam")
    settings_module.settings.cache_clear()
    access.reset()
    _put_grant(table, ADMIN, "Administrator", ["acme/sales", "acme/"])
    _put_grant(table, SUPERVISOR, "Supervisor", ["acme/*"])
    yield DynamoCalls(table)
    monkeypatch.delenv("ACCESS_MODE")
    settings_module.settings.cache_clear()
    access.reset()


def _call(method: str, path: str, principal: str | None, headers: dict[str, str], body=None):
    event, handler = event_for(method, path, {} if body is None and method in ("POST", "PUT") else body, headers)
    if principal is not None:
        event["requestContext"]["identity"] = {"userArn": principal, "sourceIp": "10.0.0.1"}
    module = handler.rsplit(".", 1)[0]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError:
        pytest.skip(f"{module} is not built yet")
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


def _assert_reached_route(reply, case: str) -> None:
    assert reply.status not in (401, 403), f"{case}: {reply.text}"
    if reply.status >= 400:
        # The resolver matched the route and its method: no 405.
        assert reply.json["exception"] != "MethodNotAllowedException", f"{case}: {reply.text}"


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


# ---------------------------------------------------------------- principals


@pytest.mark.parametrize(("arn", "principal"), [
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/supervisors/bob", f"arn:aws:iam::{ACCOUNT}:role/supervisors"),
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/i-0abc/with/slashes", f"arn:aws:iam::{ACCOUNT}:role/ops"),
    (f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/ops/s", f"arn:aws-cn:iam::{ACCOUNT}:role/ops"),
    (f"arn:aws:iam::{ACCOUNT}:user/team/alice", f"arn:aws:iam::{ACCOUNT}:user/team/alice"),
    (f"arn:aws:sts::{ACCOUNT}:federated-user/carol", f"arn:aws:sts::{ACCOUNT}:federated-user/carol"),
])
def test_principal_normalisation(arn, principal):
    assert access.normalise_principal(arn) == principal


def test_no_identity_or_not_an_arn_is_no_caller():
    assert access.caller({"requestContext": {"identity": {"userArn": None}}}) is None
    assert access.caller({"requestContext": {"identity": {"userArn": "alice"}}}) is None
    assert access.caller({}) is None


def test_grant_tenant_wildcards():
    grant = access.Grant("p", "Supervisor", frozenset({"acme/*", "/", "beta/"}))
    assert grant.allows_tenant("acme", "any") and grant.allows_tenant("acme", "")
    assert grant.allows_tenant("", "") and grant.allows_tenant("beta", "")
    assert not grant.allows_tenant("beta", "x") and not grant.allows_tenant("", "x")
    assert access.Grant("p", "Administrator", frozenset({"*"})).allows_tenant("anything", "at-all")


# ---------------------------------------------------------------- local enforcing mode (AUTH=on)


def test_local_enforcing_mode_reads_grants_from_a_file_and_sees_edits(table, tmp_path, monkeypatch):
    grants_file = tmp_path / "grants.json"
    grants_file.write_text(json.dumps({"grants": [
        {"principal": "arn:aws:iam::000000000000:user/alice", "role": "Supervisor", "tenants": ["acme/sales"]}]}))
    monkeypatch.setenv("AUTH", "on")
    monkeypatch.setenv("GRANTS_FILE", str(grants_file))
    settings_module.settings.cache_clear()
    access.reset()
    try:
        alice = "arn:aws:iam::000000000000:user/alice"
        assert _call("GET", "/services/123", alice, GRANTED).status == 404
        assert _call("POST", "/services/start", alice, GRANTED, {"customer_id": "c"}).status == 403
        assert _call("GET", "/services/123", None, GRANTED).status == 401
        grants_file.write_text(json.dumps({"grants": [
            {"principal": alice, "role": "Administrator", "tenants": ["acme/sales"]}]}))
        os.utime(grants_file, (1, 1))  # a new mtime even within the same clock tick
        access.reset()  # the cache, not the file, decides how soon an edit is seen; skip the wait
        assert _call("POST", "/services/start", alice, GRANTED, {"customer_id": "c"}).status == 201
    finally:
        settings_module.settings.cache_clear()
        access.reset()


# ---------------------------------------------------------------- fail closed


@pytest.fixture
def lambda_env(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ServicesFunction")
    monkeypatch.delenv("AWS_SAM_LOCAL", raising=False)
    monkeypatch.setenv("PAGE_TOKEN_SECRET", "x" * 32)
    monkeypatch.setenv("ACCESS_MODE", "iam")
    settings_module.settings.cache_clear()
    yield monkeypatch
    settings_module.settings.cache_clear()


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("ACCESS_MODE", None, "ACCESS_MODE is not set"),
    ("ACCESS_MODE", "open", "ACCESS_MODE='open' is not one of"),
    ("PAGE_TOKEN_SECRET", None, "PAGE_TOKEN_SECRET is missing"),
    ("PAGE_TOKEN_SECRET", "short", "PAGE_TOKEN_SECRET is too short"),
])
def test_inside_lambda_a_missing_security_setting_stops_the_function(lambda_env, variable, value, message):
    if value is None:
        lambda_env.delenv(variable)
    else:
        lambda_env.setenv(variable, value)
    with pytest.raises(settings_module.ConfigurationError, match=re.escape(message)):
        settings_module.settings()


def test_inside_lambda_grants_always_come_from_the_table(lambda_env):
    lambda_env.setenv("AUTH", "on")
    lambda_env.setenv("GRANTS_FILE", "/tmp/anything.json")
    config = settings_module.settings()
    assert config.access_mode == "iam" and config.grants_file is None


def test_sam_local_is_not_lambda(lambda_env):
    lambda_env.setenv("AWS_SAM_LOCAL", "true")
    lambda_env.delenv("ACCESS_MODE")
    lambda_env.delenv("PAGE_TOKEN_SECRET")
    config = settings_module.settings()
    assert config.access_mode == "off" and len(config.page_token_secret) >= 32


def test_outside_lambda_a_missing_secret_is_random_never_guessable(monkeypatch):
    monkeypatch.delenv("PAGE_TOKEN_SECRET")
    try:
        settings_module.settings.cache_clear()
        first = settings_module.settings().page_token_secret
        settings_module.settings.cache_clear()
        second = settings_module.settings().page_token_secret
        assert first != second and len(first) >= 32 and os.environ["TABLE_NAME"] not in first
    finally:
        settings_module.settings.cache_clear()


def test_auth_on_defaults_to_the_local_grants_file(monkeypatch):
    monkeypatch.setenv("AUTH", "on")
    monkeypatch.delenv("GRANTS_FILE", raising=False)
    try:
        settings_module.settings.cache_clear()
        config = settings_module.settings()
        assert config.access_mode == "iam" and config.grants_file == "local-grants.json"
    finally:
        settings_module.settings.cache_clear()


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


def test_grants_script_refuses_what_would_grant_nothing_or_too_much(tmp_path, capsys):
    from scripts import grants

    path = ["--file", str(tmp_path / "g.json")]
    assert grants.main(["add", ADMIN, "--tenant", "acme/", *path]) == 2  # no role for a new grant
    assert grants.main(["add", ADMIN, "--role", "Administrator", "--tenant", "acme", *path]) == 2  # no "/"
    assert grants.main(["add", "alice", "--role", "Administrator", "--tenant", "acme/", *path]) == 2
    assert grants.main(["add", ADMIN, "--role", "Administrator", *path]) == 2  # no tenant
    assert not (tmp_path / "g.json").exists()
    assert grants.main(["add", ADMIN, "--role", "Administrator", "--tenant", "acme/*", *path]) == 0
    assert json.loads((tmp_path / "g.json").read_text())["grants"] == [
        {"principal": ADMIN, "role": "Administrator", "tenants": ["acme/*"]}]
