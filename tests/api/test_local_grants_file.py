"""The local enforcing mode (AUTH=on: grants from a JSON file, the caller named by `X-CS-Principal`),
through lambda_handler with the local run's own event adapter:

* an edit of the file applies to the very next request (no cache, no waiting, also when the edit
  keeps the file's size and follows the previous one within milliseconds);
* a file that is missing or malformed while the run is up answers a clear 403 naming the file and
  the problem (never a 500), and the next request after the fix is served;
* a request without `X-CS-Principal` is a 401 that says to send it; deployed (grants in the table),
  the 401 still says to sign with SigV4.
"""

from __future__ import annotations

import json
import os

import pytest

from lib import settings as settings_module
from lib.api import access
from local import events
from tests.support import event_for, invoke

ALICE = f"arn:aws:iam::{events.PRINCIPAL_ACCOUNT}:user/alice"
ACME = {"ContactCenterId": "acme", "GroupId": "sales"}


@pytest.fixture
def grants_file(table, tmp_path, monkeypatch):
    path = tmp_path / "grants.json"
    monkeypatch.setenv("AUTH", "on")
    monkeypatch.setenv("GRANTS_FILE", str(path))
    settings_module.settings.cache_clear()
    access.reset()
    yield path
    monkeypatch.delenv("AUTH")
    monkeypatch.delenv("GRANTS_FILE")
    settings_module.settings.cache_clear()
    access.reset()


def write(path, *grants: dict) -> None:
    path.write_text(json.dumps({"grants": list(grants)}))


def call(method: str, path: str, principal: str | None = "alice", headers: dict | None = None, body=None):
    headers = {**ACME, **(headers or {})}
    if principal is not None:
        headers[events.PRINCIPAL_HEADER] = principal
    event, handler = event_for(method, path, body if body is not None else ({} if method == "POST" else None), headers)
    return invoke(event, handler)


def start(principal: str = "alice"):
    return call("POST", "/services/start", principal, body={"customer_id": "c"})


def test_an_edit_applies_to_the_very_next_request(grants_file):
    write(grants_file, {"principal": ALICE, "role": "Supervisor", "tenants": ["acme/sales"]})
    assert call("GET", "/services/123").status == 404
    assert start().status == 403
    write(grants_file, {"principal": ALICE, "role": "Administrator", "tenants": ["acme/sales"]})
    assert start().status == 201
    write(grants_file)  # revoked
    reply = start()
    assert reply.status == 403 and reply.json["message"] == f"{ALICE} has no access grant"


def test_same_size_edits_in_quick_succession_are_each_seen(grants_file):
    # "acme/sales" and "acme/sale5" have the same length: the file's size never changes between
    # writes a few milliseconds apart; each one is seen by the request that follows it.
    for round_ in range(20):
        tenant = "acme/sales" if round_ % 2 == 0 else "acme/sale5"
        write(grants_file, {"principal": ALICE, "role": "Administrator", "tenants": [tenant]})
        assert start().status == (201 if tenant == "acme/sales" else 403), round_


@pytest.mark.parametrize(("content", "reason"), [
    ('{"grants": [', "is not valid JSON (line 1, column 13"),
    ('["alice"]', 'is not a JSON object {"grants": [...]}'),
    ('{"grants": [{"principal": "arn:aws:iam::000000000000:user/alice", "role": "Admin", "tenants": []}]}',
     'whose role is "Admin", not Administrator or Supervisor'),
])
def test_a_file_that_breaks_while_running_is_a_clear_403_until_it_is_fixed(grants_file, items, content, reason):
    write(grants_file, {"principal": ALICE, "role": "Administrator", "tenants": ["acme/sales"]})
    assert start().status == 201
    before = items()
    grants_file.write_text(content)
    reply = start()
    assert reply.status == 403, reply.text
    assert reply.json["exception"] == "ForbiddenException"
    assert reply.json["message"].startswith(f"the grants file {grants_file} ") and reason in reply.json["message"]
    assert items() == before  # refused before anything was touched
    write(grants_file, {"principal": ALICE, "role": "Administrator", "tenants": ["acme/sales"]})
    assert start().status == 201


def test_a_file_removed_while_running_is_a_clear_403_until_it_is_back(grants_file):
    write(grants_file, {"principal": ALICE, "role": "Supervisor", "tenants": ["acme/sales"]})
    assert call("GET", "/services/123").status == 404
    os.remove(grants_file)
    reply = call("GET", "/services/123")
    assert reply.status == 403 and reply.json["exception"] == "ForbiddenException"
    assert reply.json["message"].startswith(f"the grants file {grants_file} does not exist")
    write(grants_file, {"principal": ALICE, "role": "Supervisor", "tenants": ["acme/sales"]})
    assert call("GET", "/services/123").status == 404


def test_without_the_principal_header_the_401_says_what_to_send(grants_file):
    write(grants_file, {"principal": ALICE, "role": "Administrator", "tenants": ["acme/sales"]})
    reply = call("GET", "/services/123", principal=None)
    assert reply.status == 401 and reply.json["exception"] == "UnauthorizedException"
    message = reply.json["message"]
    assert f"send the header {events.PRINCIPAL_HEADER}: <name>" in message and "Signature" not in message
    # The identity the message promises is the one the local adapter makes of the header.
    promised = message.split("the caller is ", 1)[1].rstrip(")").replace("<name>", "alice")
    assert promised == ALICE
    assert call("GET", "/services/123", principal="alice").status == 404


def test_deployed_the_401_still_says_to_sign_with_sigv4(table, monkeypatch):
    monkeypatch.setenv("ACCESS_MODE", "iam")
    monkeypatch.delenv("AUTH", raising=False)
    settings_module.settings.cache_clear()
    access.reset()
    try:
        event, handler = event_for("GET", "/services/123", None, ACME)
        reply = invoke(event, handler)
        assert reply.status == 401
        assert reply.json["message"] == "missing or invalid credentials: sign the request with AWS Signature Version 4"
    finally:
        settings_module.settings.cache_clear()
        access.reset()


@pytest.mark.parametrize(("value", "enforced"), [("on", True), ("ON", True), ("1", True), ("true", True),
                                                 ("yes", True), ("off", False), ("0", False), ("", False)])
def test_the_local_run_and_the_functions_agree_on_what_auth_means(monkeypatch, value, enforced):
    """AUTH=1 once enforced access in the functions while the local adapter made no identity from
    X-CS-Principal: every request was a 401 whatever the client sent."""
    monkeypatch.setenv("AUTH", value)
    monkeypatch.delenv("ACCESS_MODE", raising=False)
    settings_module.settings.cache_clear()
    try:
        assert (settings_module.settings().access_mode == "iam") is enforced
        assert events.auth_mode() is enforced
    finally:
        settings_module.settings.cache_clear()
