"""The access matrix over HTTP against `make run` in its enforcing mode (`AUTH=on`, grants from a
local file, the caller named by `X-CS-Principal`): every documented route x caller x granted /
other tenant answers as the deployed stage would (401 / 403 before the route, else the route)."""

from __future__ import annotations

import json
import re

import pytest

from local.template import ROOT
from tests.e2e.conftest import Client, start_local_server

TENANT, OTHER = {"ContactCenterId": "e2e-acme"}, {"ContactCenterId": "e2e-globex"}
PRINCIPALS = {"Administrator": "alice", "Supervisor": "bob", "unknown": "mallory", "none": None}
SAMPLE = {"service_id": "123", "state_id": "1", "task_id": "1", "ext_name": "note", "customer_id": "c-1",
          "contact_key": "k-1", "job_id": "1"}


def _arn(name: str) -> str:
    return f"arn:aws:iam::000000000000:user/{name}"


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory, cs):
    if cs.deployed:
        pytest.skip("the enforcing local mode; a deployed stage is checked by the other tests")
    grants = tmp_path_factory.mktemp("grants") / "grants.json"
    grants.write_text(json.dumps({"grants": [
        {"principal": _arn("alice"), "role": "Administrator", "tenants": ["e2e-acme/"]},
        {"principal": _arn("bob"), "role": "Supervisor", "tenants": ["e2e-acme/*"]}]}))
    url, stop = start_local_server(AUTH="on", GRANTS_FILE=str(grants))
    client = Client(url, TENANT)
    probe = client.post("/services/start", {"customer_id": "probe"}, headers={"X-CS-Principal": "alice"})
    if probe.status == 401:
        stop()
        pytest.skip("this local server does not turn X-CS-Principal into a caller identity")
    assert probe.status == 201, probe.text
    yield client
    client.delete(f"/services/{probe.json['service_id']}", headers={"X-CS-Principal": "alice"})
    stop()


def _operations() -> list[tuple[str, str]]:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    return [(method.upper(), re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path))
            for path, ops in document["paths"].items() for method in ops]


def test_route_caller_tenant_matrix_over_http(enforcing):
    failures = []
    for method, path in _operations():
        for role, name in PRINCIPALS.items():
            for granted, tenant in ((True, TENANT), (False, OTHER)):
                headers = {"X-CS-Principal": name} if name else {}
                body = {} if method in ("POST", "PUT") else None
                reply = enforcing.request(method, path, body, headers=headers, tenant=tenant)
                exception = (reply.json or {}).get("exception") if reply.text.startswith("{") else None
                if role == "none":
                    expected = (401, "UnauthorizedException")
                elif role == "unknown" or not granted or (role == "Supervisor" and method != "GET"):
                    expected = (403, "ForbiddenException")
                else:
                    expected = None
                if expected is None and reply.status in (401, 403, 405):
                    failures.append(f"{method} {path} {role} granted: {reply.status} {reply.text}")
                if expected is not None and (reply.status, exception) != expected:
                    failures.append(f"{method} {path} {role} granted={granted}: {reply.status} {reply.text}")
    assert not failures, "\n".join(failures[:20])

