"""The demo tenant behind Swagger UI's examples (local/demo.py; README, "Two commands"): nothing is
seeded until the Swagger page asks for its document; then tenant `demo` holds the data its examples
name, the served document carries those ids, and the default tenant stays empty."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.http.test_local_server import http
from tests.support import BASE, running

DEMO = {"ContactCenterId": "demo"}
WINDOW = f"{BASE}/maintenance/services/stream?time_from=2020-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def server():
    with running() as info:
        yield info


def _document(server) -> dict:
    with urllib.request.urlopen(server["url"] + "/swagger/openapi.json", timeout=300) as reply:
        return json.loads(reply.read())


def _path_example(document: dict, path: str, method: str, name: str):
    parameters = document["paths"][path][method]["parameters"]
    return next(p.get("example") for p in parameters if p["name"] == name)


def test_seeded_on_first_load_only_in_the_demo_tenant(server):
    assert http(server, "GET", WINDOW, headers=DEMO)[2] == [], "nothing before the page loads"
    document = _document(server)
    journey = _path_example(document, "/services/{service_id}", "get", "service_id")
    status, _, service = http(server, "GET", f"{BASE}/services/{journey}?extensions=*", headers=DEMO)
    assert status == 200 and service["customer_id"] == "demo-customer" and "preferences" in service
    assert http(server, "GET", f"{BASE}/services/{journey}")[0] == 404, "not in the default tenant"
    assert http(server, "GET", WINDOW)[2] == [], "the default tenant stays empty"
    ended = _path_example(document, "/services/{service_id}/end", "post", "service_id")
    assert ended != journey, "an operation that consumes its service has its own"
    job = _path_example(document, "/maintenance/jobs/{job_id}", "get", "job_id")
    assert http(server, "GET", f"{BASE}/maintenance/jobs/{job}", headers=DEMO)[0] == 200
    assert _document(server) == document, "seeded once: a reload serves the same ids"
    assert sum("demo data for Swagger UI" in line for line in server["lines"]) == 1
