"""Routing and the answers no route chooses (§2) through lambda_handler on moto: every sample event of
events/ reaches its function and route, an unknown path is a 404, a wrong method a 405 naming the
allowed ones, an unexpected failure a 500 that shows nothing of the internals."""

from __future__ import annotations

import json
import re

import pytest

from local import template
from local.template import ROOT
from tests.support import (
    assert_error,
    error_problem,
    event_for,
    invoke,
)

EVENTS = sorted((template.ROOT / "events").glob("*.json"))


@pytest.mark.parametrize("path", EVENTS, ids=[event.stem for event in EVENTS])
def test_each_event_reaches_its_handler(table, exports, path):
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


# What each maintenance sample event gets from an empty table, written out: the stream of a window in
# which nothing happened, a purge that finds nothing, the 404 of a job that does not exist (whose
# message names the job: the 404 of a path no route takes says "no route"). The files: below.
MAINTENANCE_ANSWERS = {
    "export_stream": (200, []),
    "purge": (200, {"purged": 0}),
    "get_job": (404, {"message": "job 0123456789abcdef01234567 not found", "exception": "NotFoundException"}),
}


def test_events_route_every_maintenance_operation(table, exports):
    for name in ("export_stream", "export_files", "purge", "get_job"):
        event = json.loads((ROOT / "events" / f"{name}.json").read_text())
        handler = next(route.handler for route in template.api_routes() if route.path == event["resource"])
        assert handler == "handlers.maintenance.lambda_handler", name
        reply = invoke(event, handler)
        if name == "export_files":  # an empty window still makes its three files, in the sample's CSV
            assert reply.status == 200, reply.text
            names = reply.json["created"]
            assert [n.rsplit("_", 1)[1] for n in names] == ["services.csv", "states.csv", "tasks.csv"], names
            assert sorted(p.name for p in exports.iterdir()) == sorted(names)
        else:
            assert (reply.status, reply.json) == MAINTENANCE_ANSWERS[name], f"{name}: {reply.status} {reply.text}"


def test_unknown_route_is_404(api):
    # API Gateway answers unknown routes itself (template.yaml's MISSING_AUTHENTICATION_TOKEN
    # response); a function reached with a path it does not know answers the same way.
    event, handler = event_for("GET", "/services/1")
    event["path"] = "/genesys/1/cs/services/1/nothing-here"
    assert_error(invoke(event, handler), 404, "NotFoundException")


@pytest.mark.parametrize("method, path", [("GET", "/services/start"), ("DELETE", "/services/1/end"),
                                          ("POST", "/services/1"), ("PATCH", "/customers/c/services"),
                                          ("PUT", "/services/anonymous/k/active"), ("GET", "/services/1/extensions/x")])
def test_wrong_method_is_405(api, method, path):
    assert_error(api.request(method, path), 405, "MethodNotAllowedException", method)


def _allowed(reply) -> set[str]:
    return {m.strip().upper() for m in reply.headers.get("Allow", "").split(",") if m.strip()}


def test_fixed_child_paths_are_405_with_allow(api):
    """`GET /services/{id}/states/start` answered 400 'state_id: Input should be a valid integer'."""
    sid = api.start()
    problems = []
    for path in (f"/services/{sid}/states/start", f"/services/{sid}/states/transition", f"/services/{sid}/tasks/start"):
        for method in ("GET", "PUT", "DELETE"):
            reply = api.request(method, path)
            problem = error_problem(reply, 405, "MethodNotAllowedException")
            if problem or _allowed(reply) != {"POST"}:
                problems.append(f"{method} {path}: {problem or reply.headers}")
    assert problems == []


def test_every_405_names_the_allowed_methods(api):
    problems = []
    for method, path, allowed in (("GET", "/services/start", {"POST"}), ("DELETE", "/services/1/end", {"POST"}),
                                  ("PATCH", "/services/1", {"GET", "PUT", "DELETE"}),
                                  ("POST", "/customers/c/services", {"GET"})):
        reply = api.request(method, path)
        problem = error_problem(reply, 405, "MethodNotAllowedException")
        if problem or not allowed <= _allowed(reply) <= allowed | {"HEAD", "OPTIONS"}:
            problems.append(f"{method} {path}: {problem or reply.headers}")
    assert problems == []


def test_unexpected_failure_is_500_with_request_id_only(api, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    from lib.store import table

    monkeypatch.setattr(table, "get", explode)
    monkeypatch.setattr(table, "get_stored", explode)
    reply = api.get("/services/123")
    assert_error(reply, 500, "InternalException", "request id")
    assert "secret" not in reply.text and "Traceback" not in reply.text
