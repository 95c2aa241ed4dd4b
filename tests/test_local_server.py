"""The local run (`make run`) over real HTTP: a subprocess serving the API and the embedded DynamoDB."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from local.template import ROOT

BASE = "/genesys/1/cs"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(extra_env: dict[str, str] | None = None):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update({"PORT": str(port), "TABLE_NAME": "local-test", **(extra_env or {})})
    process = subprocess.Popen([sys.executable, "-m", "local.server"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    endpoint = None
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"embedded DynamoDB .* on (http://\S+)", line)
        endpoint = found.group(1) if found else endpoint
        if "Context Services API on" in line:
            break
    else:
        process.kill()
        pytest.fail("local server did not start: " + "".join(lines))
    drain = threading.Thread(target=lambda: [lines.append(x) for x in process.stdout], daemon=True)
    drain.start()
    return process, {"url": f"http://127.0.0.1:{port}", "dynamodb": endpoint, "lines": lines, "drain": drain}


def _stop(process, info) -> int:
    """Ctrl-C, as a user would."""
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=15)
    info["drain"].join(timeout=5)
    return code


@pytest.fixture(scope="module")
def server():
    process, info = _start()
    yield info
    assert _stop(process, info) == 0
    assert any("stopped" in line for line in info["lines"]), "Ctrl-C stops cleanly"


def test_existing_dynamodb_is_used_when_configured(server):
    """AWS_ENDPOINT_URL_DYNAMODB + TABLE_NAME: no embedded DynamoDB, the table is created there."""
    process, info = _start({"AWS_ENDPOINT_URL_DYNAMODB": server["dynamodb"], "TABLE_NAME": "existing-table",
                            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
    try:
        assert info["dynamodb"] is None
        status, _, body = http(info, "POST", f"{BASE}/services/start", {"customer_id": "elsewhere"})
        assert status == 201
        client = boto3.client("dynamodb", endpoint_url=server["dynamodb"], region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        assert "existing-table" in client.list_tables()["TableNames"]
        stored = client.get_item(TableName="existing-table",
                                 Key={"PK": {"S": f"|#C#{body['service_id']}"}, "SK": {"S": "#SERVICE"}})
        assert stored["Item"]["customer_id"]["S"] == "elsewhere"
    finally:
        assert _stop(process, info) == 0


def http(server, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server["url"] + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, dict(response.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        return error.code, dict(error.headers), json.loads(text) if text else None


def test_service_life_over_http(server):
    status, headers, body = http(server, "POST", f"{BASE}/services/start", {"customer_id": "http-1", "note": "n"})
    assert status == 201 and headers["Location"] == f"{BASE}/services/{body['service_id']}"
    service_id = body["service_id"]
    status, _, view = http(server, "GET", f"{BASE}/services/{service_id}?extensions=note")
    assert status == 200 and view["note"] == "n" and view["customer_id"] == "http-1"
    assert http(server, "POST", f"{BASE}/services/{service_id}/end", {})[0] == 204
    status, _, listed = http(server, "GET", f"{BASE}/customers/http-1/services/completed")
    assert status == 200 and [s["service_id"] for s in listed] == [service_id]
    assert any(f"POST {BASE}/services/start 201" in line for line in server["lines"]), "requests are logged"


def test_link_header_points_back_at_the_local_server(server):
    for _ in range(3):
        http(server, "POST", f"{BASE}/services/start", {"customer_id": "pager"})
    _, headers, page = http(server, "GET", f"{BASE}/customers/pager/services?limit=2")
    assert len(page) == 2
    url = re.fullmatch(r'<(.+)>; rel="next"', headers["Link"]).group(1)
    assert url.startswith(f"{BASE}/customers/pager/services?"), "Link is a path (§5): nothing of Host reflected"
    with urllib.request.urlopen(server["url"] + url, timeout=30) as response:
        assert len(json.loads(response.read())) == 1


def test_unknown_route_and_wrong_method(server):
    status, _, body = http(server, "GET", f"{BASE}/no/such/route")
    assert status == 404 and body["exception"] == "NotFoundException"
    status, _, body = http(server, "DELETE", f"{BASE}/services/start")
    assert status == 405 and body["exception"] == "MethodNotAllowedException"


def test_swagger_ui_is_served_without_a_cdn(server):
    with urllib.request.urlopen(server["url"] + "/swagger", timeout=30) as response:
        page = response.read().decode()
    assert "/swagger/assets/swagger-ui-bundle.js" in page and "http" not in page.split("<script>")[-1][:60]
    for asset in ("/swagger/assets/swagger-ui-bundle.js", "/swagger/assets/swagger-ui.css", "/swagger/openapi.json"):
        with urllib.request.urlopen(server["url"] + asset, timeout=30) as response:
            assert response.status == 200 and len(response.read()) > 1000


def test_embedded_dynamodb_serialises_conditional_writes(server):
    """16 parallel conditional puts of one new key, 30 times: exactly one may win each time."""
    client = boto3.client("dynamodb", endpoint_url=server["dynamodb"], region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")

    def put(key: str) -> bool:
        try:
            client.put_item(TableName="local-test", Item={"PK": {"S": key}, "SK": {"S": "race"}},
                            ConditionExpression="attribute_not_exists(PK)")
            return True
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False

    with ThreadPoolExecutor(16) as pool:
        for trial in range(30):
            wins = list(pool.map(put, [f"race-{trial}"] * 16))
            assert wins.count(True) == 1, f"trial {trial}: {wins.count(True)} conditional puts succeeded"


def test_parallel_ends_of_one_service_complete_it_once(server):
    for _ in range(5):
        _, _, body = http(server, "POST", f"{BASE}/services/start", {"customer_id": "racer"})
        path = f"{BASE}/services/{body['service_id']}/end"
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: http(server, "POST", path, {})[0], range(8)))
        assert sorted(statuses) == [204] + [409] * 7


def test_parallel_state_and_task_starts_get_unique_ids(server):
    _, _, body = http(server, "POST", f"{BASE}/services/start", {"customer_id": "ids"})
    service_id = body["service_id"]

    def start(kind: str) -> int:
        status, _, reply = http(server, "POST", f"{BASE}/services/{service_id}/{kind}s/start", {})
        assert status == 201, reply
        return reply[f"{kind}_id"]

    with ThreadPoolExecutor(16) as pool:
        states = list(pool.map(lambda _: start("state"), range(16)))
        tasks = list(pool.map(lambda _: start("task"), range(16)))
    assert sorted(states) == list(range(1, 17))
    assert sorted(tasks) == list(range(1, 17))


def test_parallel_composite_starts_converge(server):
    element = {"service": {"customer_id": "composite-race", "service_type": "t"}, "state": {"state_type": "s"},
               "task": {"task_type": "k"}, "associate_state_task": True}
    for round_ in range(3):
        element["service"]["service_type"] = f"t{round_}"
        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(lambda _: http(server, "POST", f"{BASE}/services_composite/start",
                                                   {"services": [element]}), range(16)))
        assert {status for status, _, _ in replies} == {200}
        results = [body["services"][0] for _, _, body in replies]
        assert len({r["service_id"] for r in results}) == 1
        assert len({r["state_id"] for r in results}) == 1
        assert len({r["task_id"] for r in results}) == 1
        assert sum(r["service_created"] for r in results) == 1
        assert sum(r["state_created"] for r in results) == 1
        assert sum(r["task_created"] for r in results) == 1
