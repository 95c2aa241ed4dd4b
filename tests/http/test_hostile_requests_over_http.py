"""Hostile requests sent to the local server (`python -m local.server`) over HTTP, as a client sends
them (contract §1; the in-process twins: tests/api/test_input_validation.py): percent-encoded
customer ids reach their lists, hostile paths and bodies are 4xx, `Link` is a path whatever the Host,
and concurrent requests of several tenants are never mixed."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote


def http(server, method, path, body=None, headers=None, raw_body: bytes | None = None):
    data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(server["url"] + "/genesys/1/cs" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_over_http_percent_encoded_customer_ids_reach_their_lists(server):
    value = "C#123 ? \\ \" \u00b0 \u20ac \u2603 \U0001f600"
    status, _, text = http(server, "POST", "/services/start", {"customer_id": value})
    assert status == 201, text
    sid = json.loads(text)["service_id"]
    status, _, text = http(server, "GET", f"/customers/{quote(value, safe='')}/services")
    assert status == 200, text
    assert [s["service_id"] for s in json.loads(text)] == [sid]


def test_over_http_hostile_paths_and_bodies_are_4xx(server):
    status, _, text = http(server, "GET", "/services/%C2%B2")
    assert status == 404 and json.loads(text)["exception"] == "NotFoundException", text
    status, _, text = http(server, "POST", "/services/start", raw_body=b'{"customer_id":"c","v":' + b"[" * 10_000 +
                           b"]" * 10_000 + b"}")
    assert status == 400, text
    status, _, text = http(server, "POST", "/services/start", raw_body=b'{"customer_id":"c","v":NaN}')
    assert status == 400, text
    status, headers, text = http(server, "GET", "/services/1/states/start")
    assert status == 405 and headers.get("Allow") == "POST", (status, headers)


def test_over_http_link_is_a_path_whatever_the_host(server):
    for i in range(3):
        http(server, "POST", "/services/start", {"customer_id": "link-http", "timestamp": f"2026-01-01T00:00:0{i}Z"})
    status, headers, _ = http(server, "GET", "/customers/link-http/services?limit=1",
                              headers={"Host": "evil.example", "X-Forwarded-Proto": "javascript"})
    assert status == 200
    target = re.fullmatch(r'<([^>]+)>; rel="next"', headers["Link"]).group(1)
    assert target.startswith("/genesys/1/cs/customers/link-http/services?"), target


def test_over_http_concurrent_requests_of_several_tenants_are_not_mixed(server):
    """`make run` answered 174 of 176 concurrent list requests with another request's Link, and lost
    one of 16 parallel extension PUTs."""
    tenants = [f"tenant-{i}" for i in range(4)]
    for tenant in tenants:
        for i in range(3):
            status, _, _ = http(server, "POST", "/services/start",
                                {"customer_id": f"cust-{tenant}", "timestamp": f"2026-01-01T00:00:0{i}Z"},
                                headers={"ContactCenterId": tenant})
            assert status == 201

    def listing(index: int):
        tenant = tenants[index % len(tenants)]
        status, headers, text = http(server, "GET", f"/customers/cust-{tenant}/services?limit=1",
                                     headers={"ContactCenterId": tenant})
        return tenant, status, headers.get("Link", ""), text

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(listing, range(64)))
    wrong = [(t, s, link) for t, s, link, _ in results if s != 200 or f"/customers/cust-{t}/services?" not in link]
    assert wrong == []

    status, _, text = http(server, "POST", "/services/start", {"customer_id": "puts"})
    sid = json.loads(text)["service_id"]
    http(server, "POST", f"/services/{sid}/states/start", {})

    def put(index: int):
        return http(server, "PUT", f"/services/{sid}/extensions/k{index}", index)[0]

    def start_task(index: int):
        return http(server, "POST", f"/services/{sid}/tasks/start", {"task_type": f"t{index}"})[:3:2]

    def start_state(index: int):
        return http(server, "POST", f"/services/{sid}/states/start", {"state_type": f"s{index}"})[:3:2]

    with ThreadPoolExecutor(16) as pool:
        puts = list(pool.map(put, range(16)))
        mixed = list(pool.map(lambda i: (start_task if i % 2 else start_state)(i), range(16)))
    assert puts == [200] * 16
    assert [status for status, _ in mixed] == [201] * 16, mixed
    status, _, text = http(server, "GET", f"/services/{sid}?extensions=*")
    view = json.loads(text)
    assert {k: view.get(k) for k in (f"k{i}" for i in range(16))} == {f"k{i}": i for i in range(16)}
