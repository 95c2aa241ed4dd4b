"""The local run (`make run`) over real HTTP: a subprocess serving the API, its worker processes and
the embedded DynamoDB (and, for a fixture template, SQS and a schedule). Every server a test starts
is stopped by a fixture or a `finally`, with SIGTERM, and checked to leave no process behind; the
tests that need no server of their own share the tier's (tests/http/conftest.py)."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from local import template
from local.template import ROOT
from tests.support import BASE, descendants, running, start_server, stop_server

FIXTURE_TEMPLATE = ROOT / "tests" / "fixtures" / "local_events" / "template.yaml"


def http(server, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server["url"] + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
            return response.status, dict(response.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        return error.code, dict(error.headers), json.loads(text) if text else None


def tenant(n: int) -> dict[str, str]:
    return {"ContactCenterId": f"cc{n}", "GroupId": f"g{n}"}


# ---------------------------------------------------------------- stopping


@pytest.mark.parametrize("how", ["SIGTERM in the background (SIGINT ignored)", "Ctrl-C in a terminal"])
def test_stops_cleanly_and_leaves_no_process(how):
    background = how.startswith("SIGTERM")
    # Workers started on first use (LOCAL_WARM=0): the module's server checks the warm start-up.
    process, info = start_server({"LOCAL_WARM": "0"}, sigint=signal.SIG_IGN if background else signal.SIG_DFL)
    try:
        assert http(info, "POST", f"{BASE}/services/start", {"customer_id": "stop"})[0] == 201
        assert http(info, "POST", f"{BASE}/services/start", {"customer_id": "stop"})[0] == 201
        assert len(descendants(process.pid)) >= 2, "the resource tracker and the services function's worker"
        if background:
            # A background job of a non-interactive shell ignores SIGINT (the shell's choice, kept).
            process.send_signal(signal.SIGINT)
            time.sleep(1.5)
            assert process.poll() is None
            assert http(info, "POST", f"{BASE}/services/start", {"customer_id": "still-up"})[0] == 201
    finally:
        code = stop_server(process, info, signal.SIGTERM if background else signal.SIGINT)
    assert code == 0
    assert info["lines"][-1].strip() == "stopped"
    assert not info["left"], f"processes left running: {info['left']}"


# ---------------------------------------------------------------- the API over HTTP


def test_existing_dynamodb_is_used_when_configured(server):
    """AWS_ENDPOINT_URL_DYNAMODB + TABLE_NAME: no embedded DynamoDB, the table is created there."""
    with running({"AWS_ENDPOINT_URL_DYNAMODB": server["dynamodb"], "TABLE_NAME": "existing-table",
                  "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "LOCAL_WARM": "0"}) as info:
        assert info["dynamodb"] is None
        status, _, body = http(info, "POST", f"{BASE}/services/start", {"customer_id": "elsewhere"})
        assert status == 201
        client = boto3.client("dynamodb", endpoint_url=server["dynamodb"], region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        assert "existing-table" in client.list_tables()["TableNames"]
        stored = client.get_item(TableName="existing-table",
                                 Key={"PK": {"S": f"|#C#{body['service_id']}"}, "SK": {"S": "#SERVICE"}})
        assert stored["Item"]["customer_id"]["S"] == "elsewhere"
    assert info["code"] == 0 and not info["left"]


def test_start_up_prints_what_it_serves(server):
    text = "".join(server["lines"])
    assert f"exports: {ROOT / 'exports'} (EXPORT_DIR)" in text
    assert "access: open" in text
    names = ", ".join(function.name for function in template.functions())
    assert f"functions: {names} (isolated processes, up to 4 each)" in text
    assert len(server["warm"]) > len(template.functions()), "a warm worker per function (and the resource tracker)"


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


def _next_page(server, headers) -> str:
    """The next page's path and query from a Link header (a path, or a URL on this server)."""
    url = urljoin(server["url"] + "/", re.fullmatch(r'<(.+)>; rel="next"', headers["Link"]).group(1))
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == server["url"], headers["Link"]
    return f"{parts.path}?{parts.query}"


def test_link_header_leads_to_the_next_page_on_the_local_server(server):
    for _ in range(3):
        http(server, "POST", f"{BASE}/services/start", {"customer_id": "pager"})
    _, headers, page = http(server, "GET", f"{BASE}/customers/pager/services?limit=2")
    assert len(page) == 2
    following = _next_page(server, headers)
    assert following.startswith(f"{BASE}/customers/pager/services?")
    status, _, rest = http(server, "GET", following)
    assert status == 200 and len(rest) == 1
    assert {s["service_id"] for s in rest}.isdisjoint(s["service_id"] for s in page)


def test_unknown_route_and_wrong_method(server):
    status, _, body = http(server, "GET", f"{BASE}/no/such/route")
    assert status == 404 and body["exception"] == "NotFoundException"
    status, _, body = http(server, "DELETE", f"{BASE}/services/start")
    assert status == 405 and body["exception"] == "MethodNotAllowedException"


def test_swagger_ui_5_is_served_without_a_cdn(server):
    with urllib.request.urlopen(server["url"] + "/swagger", timeout=30) as response:
        page = response.read().decode()
    assert "/swagger/assets/swagger-ui-bundle.js" in page and "http" not in page.split("<script>")[-1][:60]
    for asset in ("/swagger/assets/swagger-ui-bundle.js", "/swagger/assets/swagger-ui.css", "/swagger/openapi.json"):
        with urllib.request.urlopen(server["url"] + asset, timeout=30) as response:
            assert response.status == 200 and len(response.read()) > 1000
    with urllib.request.urlopen(server["url"] + "/swagger/assets/VERSION", timeout=30) as response:
        assert response.read().decode().strip().startswith("v5."), "Swagger UI 5 renders OpenAPI 3.1"
    assert http(server, "GET", "/swagger/assets/../../server.py")[0] == 404


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


def test_a_maintenance_job_continues_through_the_emulated_queue(server):
    """template.yaml's jobs queue, emulated: a purge past its budget answers 202, its job message is
    delivered to the maintenance function, which finishes the job (and the message is deleted)."""
    headers = tenant(9)
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda i: http(server, "POST", f"{BASE}/services/start", {"customer_id": f"p{i}"},
                                               headers)[0], range(120)))
    assert set(created) == {201}
    status, reply_headers, job = http(server, "POST", f"{BASE}/maintenance/purge",
                                      {"limit": "2099-01-01T00:00:00Z", "operation": "purge.service.all"}, headers)
    assert status == 202, job
    location = urlsplit(urljoin(server["url"] + "/", reply_headers["Location"])).path
    deadline = time.time() + 60
    while job["status"] == "running" and time.time() < deadline:
        time.sleep(0.5)
        job = http(server, "GET", location, headers=headers)[2]
    assert (job["status"], job.get("result")) == ("succeeded", {"purged": 120}), job
    # The message is deleted once the function has returned, which is after it saved the job: the
    # line may come a moment after the job reads succeeded.
    delivered = "SQS MaintenanceJobSource -> MaintenanceFunction: 1 message(s), 1 deleted"
    deadline = time.time() + 10
    while not any(delivered in line for line in server["lines"]) and time.time() < deadline:
        time.sleep(0.2)
    assert any(delivered in line for line in server["lines"]), [line for line in server["lines"] if "SQS" in line]
    assert http(server, "GET", f"{BASE}/customers/p7/services", headers=headers)[2] == []


# ---------------------------------------------------------------- isolation of concurrent requests (issue 13, 1)


def test_parallel_lists_from_several_tenants_page_their_own_customer(server):
    """Every list reply's Link is built from its own request: its own customer, and a token that
    pages on within its own tenant."""
    owned: dict[tuple[int, str], set[str]] = {}
    for n in range(4):
        for customer in (f"shared-{n % 2}", f"own-{n}"):
            owned[(n, customer)] = {http(server, "POST", f"{BASE}/services/start", {"customer_id": customer},
                                         tenant(n))[2]["service_id"] for _ in range(3)}
    requests = [(n, customer) for _ in range(6) for (n, customer) in owned]

    def page_through(key: tuple[int, str]) -> tuple[tuple[int, str], list[str], list[str]]:
        n, customer = key
        path = f"{BASE}/customers/{customer}/services?limit=1"
        seen, links = [], []
        while path:
            status, headers, page = http(server, "GET", path, headers=tenant(n))
            assert status == 200, page
            seen += [s["service_id"] for s in page]
            if "Link" not in headers:
                break
            path = _next_page(server, headers)
            links.append(path)
        return key, seen, links

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(page_through, requests))
    for (n, customer), seen, links in results:
        assert sorted(seen) == sorted(owned[(n, customer)]), f"tenant {n}, customer {customer}: {seen}"
        assert len(links) == 2
        assert all(link.startswith(f"{BASE}/customers/{customer}/services?") for link in links), links


def test_parallel_extension_puts_are_all_stored(server):
    """96 extension PUTs on four services of four tenants, interleaved with reads of the same
    services: each PUT answers its own key and value, and every one of them is stored."""
    services = {n: http(server, "POST", f"{BASE}/services/start", {"customer_id": "ext"}, tenant(n))[2]["service_id"]
                for n in range(4)}

    def call(item: tuple[str, int, int]) -> tuple[int, dict]:
        kind, n, i = item
        if kind == "put":
            status, _, reply = http(server, "PUT", f"{BASE}/services/{services[n]}/extensions/k{i}",
                                    {"tenant": n, "value": i}, tenant(n))
        else:
            status, _, reply = http(server, "GET", f"{BASE}/services/{services[n]}?extensions=*", headers=tenant(n))
            reply = {"service_id": reply.get("service_id")}
        return status, reply

    calls = [(kind, n, i) for i in range(24) for n in range(4) for kind in ("put", "get")]
    with ThreadPoolExecutor(24) as pool:
        replies = list(pool.map(call, calls))
    expected = [(200, {f"k{i}": {"tenant": n, "value": i}} if kind == "put" else {"service_id": services[n]})
                for kind, n, i in calls]
    assert [(c, r) for c, r, e in zip(calls, replies, expected) if r != e] == []
    for n, service_id in services.items():
        _, _, view = http(server, "GET", f"{BASE}/services/{service_id}?extensions=*", headers=tenant(n))
        assert {f"k{i}": view.get(f"k{i}") for i in range(24)} == {f"k{i}": {"tenant": n, "value": i} for i in range(24)}


def test_parallel_associations_keep_all_attached_data(server):
    anonymous = []
    for i in range(16):
        n = i % 4
        _, _, body = http(server, "POST", f"{BASE}/services/start", {"contact_key": f"anon-{i}", "first": i},
                          tenant(n))
        anonymous.append((n, i, body["service_id"]))

    def associate(item: tuple[int, int, str]) -> int:
        n, i, service_id = item
        return http(server, "POST", f"{BASE}/customers/assoc-{i}/services/{service_id}",
                    {"second": i, f"only_{i}": "x"}, tenant(n))[0]

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(associate, anonymous)) == {204}
    for n, i, service_id in anonymous:
        _, _, view = http(server, "GET", f"{BASE}/services/{service_id}?extensions=*", headers=tenant(n))
        assert view["customer_id"] == f"assoc-{i}"
        assert (view["first"], view["second"], view[f"only_{i}"]) == (i, i, "x"), view
        assert not [key for key in view if key.startswith("only_") and key != f"only_{i}"]


def test_parallel_task_and_state_starts_are_validated_against_their_own_route(server):
    """State starts (with state_type) and task starts (with task_type) interleaved: none of them is
    ever judged by the other route's body model."""
    _, _, body = http(server, "POST", f"{BASE}/services/start", {"customer_id": "mixed"}, tenant(7))
    service_id = body["service_id"]
    calls = [("state", {"state_type": f"s{i}"}) if i % 2 else ("task", {"task_type": f"t{i}"}) for i in range(48)]

    def start(call):
        kind, payload = call
        return kind, http(server, "POST", f"{BASE}/services/{service_id}/{kind}s/start", payload, tenant(7))

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(start, calls))
    failures = [(kind, status, reply) for kind, (status, _, reply) in results if status != 201]
    assert not failures
    assert sorted(reply["task_id"] for kind, (_, _, reply) in results if kind == "task") == list(range(1, 25))


# ---------------------------------------------------------------- other event sources (fixture template)


@pytest.fixture(scope="module")
def fixture_server(tmp_path_factory):
    exports = tmp_path_factory.mktemp("exports")
    grants = exports / "grants.json"  # AUTH=on needs a valid grants file to start (the fixture's functions ignore it)
    grants.write_text('{"grants": []}')
    process, info = start_server({"EXPORT_DIR": str(exports), "LOCAL_SCHEDULE_SECONDS": "1", "AUTH": "on",
                                  "GRANTS_FILE": str(grants)}, FIXTURE_TEMPLATE)
    info["exports"] = exports
    try:
        yield info
    finally:
        code = stop_server(process, info)
    assert code == 0 and not info["left"], (code, info["left"])


def _wait_for(predicate, timeout: float = 20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_fixture_start_up_names_queues_exports_and_event_sources(fixture_server):
    text = "".join(fixture_server["lines"])
    assert re.search(r"embedded SQS \(moto\) on http://127\.0\.0\.1:\d+", text)
    assert re.search(r"queue JobQueue: http://\S+/123456789012/JobQueue", text)
    assert f"exports: {fixture_server['exports']} (EXPORT_DIR)" in text
    assert "access: AUTH=on" in text
    assert "SQS Jobs -> WorkerFunction" in text and "Schedule Tick -> WorkerFunction: every 1 s" in text
    assert "embedded DynamoDB" not in text, "a template without a table starts no DynamoDB"


def test_fixture_function_environment_points_at_local_resources(fixture_server):
    status, _, reply = http(fixture_server, "GET", "/echo/x")
    assert status == 200
    assert reply["env"]["JOB_QUEUE_URL"].endswith("/123456789012/JobQueue")
    assert reply["env"]["EXPORT_DIR"] == str(fixture_server["exports"])
    assert reply["env"]["FIXTURE_STAGE"] == "fixture"


def test_http_events_carry_raw_path_query_values_and_identity(fixture_server):
    status, _, reply = http(fixture_server, "GET", "/echo/C%23123?x=1&x=2&y=a+b",
                            headers={"X-CS-Principal": "alice", "X-Forwarded-Proto": "javascript"})
    event = reply["event"]
    assert status == 200
    assert (event["resource"], event["path"]) == ("/echo/{name}", "/echo/C%23123")
    assert event["pathParameters"] == {"name": "C%23123"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["a b"]}
    assert event["queryStringParameters"] == {"x": "2", "y": "a b"}
    assert event["requestContext"]["identity"]["userArn"] == "arn:aws:iam::000000000000:user/alice"
    assert event["requestContext"]["identity"]["caller"] == "alice"
    assert event["requestContext"]["identity"]["accessKey"] == "LOCAL"
    assert not [key for key in event["headers"] if key.lower() == "x-cs-principal"]
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    _, _, anonymous = http(fixture_server, "GET", "/echo/y")
    assert anonymous["event"]["requestContext"]["identity"]["userArn"] is None


def test_sqs_messages_are_handed_to_the_function_and_deleted_only_on_success(fixture_server):
    exports = fixture_server["exports"]
    jobs = [{"job": "plain"}, {"job": "reported", "fail_times": 1}, {"job": "raised", "fail_times": 1, "mode": "raise"}]
    for job in jobs:  # one at a time: a raised error sends its whole batch back
        assert http(fixture_server, "POST", "/jobs", job)[0] == 202
        assert _wait_for(lambda job=job: job["job"] in _lines(exports / "done.log")), _lines(exports / "attempts.log")
    time.sleep(2.5)  # past the visibility timeout: anything not deleted would be delivered again
    assert sorted(_lines(exports / "done.log")) == ["plain", "raised", "reported"]
    assert sorted(_lines(exports / "attempts.log")) == ["plain 1", "raised 1", "raised 2", "reported 1", "reported 2"]
    endpoint = re.search(r"embedded SQS \(moto\) on (\S+)", "".join(fixture_server["lines"])).group(1)
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    url = sqs.get_queue_url(QueueName="JobQueue")["QueueUrl"]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
    assert "deadLetterTargetArn" in counts["RedrivePolicy"]
    assert any("Jobs -> WorkerFunction: 1 message(s), 0 deleted, 1 reported failed" in line
               for line in fixture_server["lines"])


def test_schedule_invokes_the_function_with_a_scheduled_event(fixture_server):
    schedule = fixture_server["exports"] / "schedule.log"
    assert _wait_for(lambda: len(_lines(schedule)) >= 2, timeout=15), "two ticks of a 1 s schedule"
    seen = [json.loads(line) for line in _lines(schedule)]
    for entry in seen:
        assert entry["event"]["detail-type"] == "Scheduled Event" and entry["event"]["source"] == "aws.events"
        assert entry["event"]["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/WorkerFunctionTick"]
        assert entry["dead_letters"] == "arn:aws:sqs:us-east-1:123456789012:DeadLetters"
