"""A 400 for bad input names the field and says in words what is wrong with it (README: "a clear
4xx JSON error naming the problem"), whatever pydantic's error type was: a missing field, a wrong
type, a field the request does not have, a value out of its bounds or its set, a body that is not
JSON or not an object; and the request changes nothing."""

from __future__ import annotations

import pytest

PURGE = '"operation": "purge.service.all", "limit": "2026-01-01T00:00:00Z"'


@pytest.mark.parametrize(("path", "raw", "message"), [
    ("/maintenance/purge", '{"operation": "purge.service.all"}', "limit: is required"),
    ("/maintenance/purge", "{" + PURGE + ', "dry_run": "maybe"}', "dry_run: is not a field of this request"),
    ("/services/start", '{"customer_id": "c", "timestamp": 5}', "timestamp: must be a string"),
    ("/services/start", '{"customer_id": ', "body: request body is not valid JSON"),
    ("/services/start", "[1]", "body: must be a JSON object"),
    ("/services/1/states/start", '{"state_type": "s", "previous_state_id": 0}', "previous_state_id: must be at least 1"),
    ("/maintenance/purge", '{"operation": "x", "limit": "2026-01-01T00:00:00Z"}',
     "operation: must be one of purge.service.all, purge.service.started, purge.service.started.anonymous, "
     "purge.service.completed, purge.service.completed.anonymous"),
])
def test_a_400_names_the_field_and_the_problem_in_words(api, items, path, raw, message):
    before = items()
    reply = api.request("POST", path, raw_body=raw, headers={"Content-Type": "application/json"})
    assert (reply.status, reply.json) == (400, {"message": message, "exception": "ValidationException"})
    assert items() == before
