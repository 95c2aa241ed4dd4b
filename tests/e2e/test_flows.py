"""The main flows of the contract over HTTP, against the local server or a deployed stage
(tests/e2e/conftest.py). Only what a client sees: statuses, bodies, headers."""

from __future__ import annotations

import os
import secrets

import pytest


def _error(reply, status: int, exception: str) -> None:
    assert reply.status == status, reply.text
    body = reply.json
    assert set(body) == {"message", "exception"} and body["exception"] == exception, reply.text


def test_service_life(cs):
    customer = f"cust-{secrets.token_hex(4)}"
    reply = cs.post("/services/start", {"customer_id": customer, "service_type": "billing", "channel": "ivr"})
    assert reply.status == 201, reply.text
    service_id = reply.json["service_id"]
    cs.created.append((cs.tenant, service_id))
    assert reply.header("Location").endswith(f"/genesys/1/cs/services/{service_id}")
    assert cs.get(reply.header("Location")).status == 200  # the Location is where the service is

    view = cs.get(f"/services/{service_id}?extensions=*").json
    assert view["service_id"] == service_id and view["customer_id"] == customer
    assert view["service_type"] == "billing" and view["channel"] == "ivr" and "completed" not in view

    assert cs.post(f"/services/{service_id}/end", {"disposition": "paid"}).status == 204
    view = cs.get(f"/services/{service_id}").json
    assert view["disposition"] == "paid" and "completed" in view and view["duration"] >= 0
    _error(cs.post(f"/services/{service_id}/end", {}), 409, "ConflictException")

    assert cs.delete(f"/services/{service_id}").status == 204
    _error(cs.get(f"/services/{service_id}"), 404, "NotFoundException")


def test_states_tasks_and_transition(cs):
    service_id = cs.start(customer_id=f"cust-{secrets.token_hex(4)}")
    state = cs.post(f"/services/{service_id}/states/start", {"state_type": "identify"})
    assert state.status == 201 and state.json == {"state_id": 1}
    task = cs.post(f"/services/{service_id}/tasks/start", {"task_type": "lookup", "state_id": 1})
    assert task.status == 201 and task.json == {"task_id": 1}
    loose = cs.post(f"/services/{service_id}/tasks/start", {"task_type": "note"})
    assert loose.status == 201 and loose.json == {"task_id": 2}

    moved = cs.post(f"/services/{service_id}/states/transition",
                    {"from": {"state_id": 1, "disposition": "ok"}, "to": {"state_type": "pay"}})
    assert moved.status == 201 and moved.json == {"state_id": 2}
    new_state = cs.get(f"/services/{service_id}/states/2").json
    assert new_state["previous_state_id"] == 1 and new_state["state_type"] == "pay"

    completed = cs.get(f"/services/{service_id}/states/completed").json
    active = cs.get(f"/services/{service_id}/states/active").json
    assert [s["state_id"] for s in completed] == [1] and [s["state_id"] for s in active] == [2]
    # The state's end completed its task; the loose task is still active.
    assert cs.get(f"/services/{service_id}/tasks/1").json.get("completed") is not None
    assert [t["task_id"] for t in cs.get(f"/services/{service_id}/tasks/active").json] == [2]
    assert cs.post(f"/services/{service_id}/tasks/2/end", {"disposition": "done"}).status == 204
    assert cs.get(f"/services/{service_id}/tasks/2").json["disposition"] == "done"

    embedded = cs.get(f"/services/{service_id}?active_states=true&completed_states=true&completed_tasks=true").json
    assert [s["state_id"] for s in embedded["active_states"]] == [2]
    assert sorted(t["task_id"] for t in embedded["completed_tasks"]) == [1, 2]


def test_composite_start_finds_what_it_created(cs):
    customer = f"cust-{secrets.token_hex(4)}"
    body = {"services": [{"service": {"customer_id": customer, "service_type": "care"},
                          "state": {"state_type": "queue"}, "task": {"task_type": "route"},
                          "associate_state_task": True}]}
    first = cs.post("/services_composite/start", body)
    assert first.status == 200, first.text
    (result,) = first.json["services"]
    cs.created.append((cs.tenant, result["service_id"]))
    assert result["service_created"] and result["state_created"] and result["task_created"]
    again = cs.post("/services_composite/start", body)
    (reused,) = again.json["services"]
    assert reused["service_id"] == result["service_id"] and reused["state_id"] == result["state_id"]
    assert not reused["service_created"] and not reused["state_created"] and not reused["task_created"]


def test_lists_page_with_link_headers(cs):
    customer = f"cust-{secrets.token_hex(4)}"
    made = [cs.start(customer_id=customer, service_type="list") for _ in range(5)]
    anonymous = cs.start(contact_key=f"key-{secrets.token_hex(4)}")
    seen, path, pages = [], f"/customers/{customer}/services?limit=2", 0
    while path:
        reply = cs.get(path)
        assert reply.status == 200, reply.text
        seen += [s["service_id"] for s in reply.json]
        pages += 1
        link = reply.header("Link")
        path = link[link.index("<") + 1: link.index(">")] if link else None
    assert sorted(seen) == sorted(made) and pages == 3
    assert cs.post(f"/services/{made[0]}/end", {}).status == 204
    active = [s["service_id"] for s in cs.get(f"/customers/{customer}/services/active").json]
    completed = [s["service_id"] for s in cs.get(f"/customers/{customer}/services/completed").json]
    assert completed == [made[0]] and sorted(active) == sorted(made[1:])
    key = cs.get(f"/services/{anonymous}").json["contact_key"]
    assert [s["service_id"] for s in cs.get(f"/services/anonymous/{key}").json] == [anonymous]


def test_put_ttl_sets_the_expiration(cs):
    service_id = cs.start(customer_id=f"cust-{secrets.token_hex(4)}")
    reply = cs.put(f"/services/{service_id}", {"ttl": 3600})
    assert reply.status == 200 and reply.json["service_id"] == service_id
    assert cs.get(f"/services/{service_id}").json["expiration_time"] == reply.json["expiration_time"]
    _error(cs.put(f"/services/{service_id}", {}), 400, "ValidationException")


def test_tenants_do_not_see_each_other(cs, other_tenant):
    service_id = cs.start(customer_id="shared-customer-id")
    _error(cs.get(f"/services/{service_id}", tenant=other_tenant), 404, "NotFoundException")
    _error(cs.delete(f"/services/{service_id}", tenant=other_tenant), 404, "NotFoundException")
    assert cs.get("/customers/shared-customer-id/services", tenant=other_tenant).json == []
    assert cs.get(f"/services/{service_id}").status == 200


def test_errors_in_the_contracts_shape(cs):
    _error(cs.post("/services/start", raw=b"{not json"), 400, "ValidationException")
    _error(cs.post("/services/start", {"service_type": "no owner"}), 400, "ValidationException")
    _error(cs.get("/services/1", headers={"ContactCenterId": "bad value!"}), 400, "ValidationException")
    _error(cs.get("/services/999999999"), 404, "NotFoundException")
    _error(cs.get("/no/such/route"), 404, "NotFoundException")
    _error(cs.request("PATCH", "/services/start", {}), 405, "MethodNotAllowedException")
    _error(cs.post("/services/start", raw=b'{"customer_id": "c", "x": "' + b"a" * (130 * 1024) + b'"}'),
           413, "PayloadTooLargeException")


def test_unsigned_requests_are_refused_when_deployed(cs):
    if not cs.deployed:
        pytest.skip("the local run is open (CS_BASE_URL targets a deployed stage)")
    _error(cs.get("/services/1", sign=False), 401, "UnauthorizedException")
    _error(cs.get("/no/such/route", sign=False), 401, "UnauthorizedException")


@pytest.mark.skipif(not os.environ.get("CS_E2E_SUPERVISOR"), reason="CS_E2E_SUPERVISOR names no supervisor profile")
def test_a_supervisor_reads_but_does_not_write(cs):
    """With CS_E2E_SUPERVISOR=<AWS profile of a principal with the Supervisor policy and grant>."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    from tests.e2e.conftest import Client

    credentials = botocore.session.Session(profile=os.environ["CS_E2E_SUPERVISOR"]).get_credentials()
    region = cs.base_url.split(".execute-api.")[1].split(".")[0]

    def sign(method, url, headers, data):
        request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
        return dict(request.headers.items())

    supervisor = Client(cs.base_url, cs.tenant, sign)
    service_id = cs.start(customer_id=f"cust-{secrets.token_hex(4)}")
    assert supervisor.get(f"/services/{service_id}").status == 200
    _error(supervisor.delete(f"/services/{service_id}"), 403, "ForbiddenException")


def test_maintenance_stream_and_purge_stay_in_their_tenant(cs, other_tenant):
    import time
    from datetime import UTC, datetime, timedelta

    kept = cs.start(customer_id=f"cust-{secrets.token_hex(4)}")  # this run's main tenant: not purged
    ended = cs.start(tenant=other_tenant, customer_id="m-1")
    active = cs.start(tenant=other_tenant, customer_id="m-2")
    assert cs.post(f"/services/{ended}/end", {}, tenant=other_tenant).status == 204
    stream = cs.get("/maintenance/services/stream?time_from=2020-01-01T00:00:00Z", tenant=other_tenant)
    assert stream.status == 200 and sorted(stream.json) == sorted([ended, active])

    limit = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    reply = cs.post("/maintenance/purge", {"limit": limit, "operation": "purge.service.completed"},
                    tenant=other_tenant)
    if reply.status == 202:  # continued as a job: follow it to its end
        deadline = time.monotonic() + 120
        while (job := cs.get(reply.header("Location"), tenant=other_tenant).json)["status"] == "running":
            assert time.monotonic() < deadline, job
            time.sleep(1)
        assert job["status"] == "succeeded", job
        result = job["result"]
    else:
        assert reply.status == 200, reply.text
        result = reply.json
    assert result == {"purged": 1}
    _error(cs.get(f"/services/{ended}", tenant=other_tenant), 404, "NotFoundException")
    assert cs.get(f"/services/{active}", tenant=other_tenant).status == 200
    assert cs.get(f"/services/{kept}").status == 200
