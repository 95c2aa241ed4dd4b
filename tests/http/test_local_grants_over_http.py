"""`AUTH=on make run` (the local enforcing mode) over real HTTP: a missing or malformed grants file
stops it at start with the reason, before anything listens; with a valid file, an edit applies to the
next request, a file broken while it runs answers a clear 403, and a request without
`X-CS-Principal` a 401 that names the header."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

from local import events
from local.template import ROOT

ALICE = f"arn:aws:iam::{events.PRINCIPAL_ACCOUNT}:user/alice"
BASE = "/genesys/1/cs"


def _make_run(grants_file, **extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_ENDPOINT_URL") and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "ACCESS_MODE")}
    env.update({"AUTH": "on", "GRANTS_FILE": str(grants_file), "LOCAL_WARM": "0", "TABLE_NAME": "auth-on",
                "EXPORT_DIR": str(grants_file.parent / "exports"), **extra})
    return subprocess.Popen(["make", "--no-print-directory", "run", "PORT=0"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.parametrize(("content", "reason"), [
    (None, "does not exist (GRANTS_FILE"),
    ('{"grants": [', "is not valid JSON (line 1, column 13: Expecting value)"),
    ('{"grants": [{"principal": "alice", "role": "Admin", "tenants": ["acme/"]}]}',
     'has grants[0] (alice) whose role is "Admin", not Administrator or Supervisor'),
])
def test_a_missing_or_malformed_grants_file_stops_make_run_at_start(tmp_path, content, reason):
    grants_file = tmp_path / "grants.json"
    if content is not None:
        grants_file.write_text(content)
    make = _make_run(grants_file)
    try:
        output, _ = make.communicate(timeout=60)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
    assert make.returncode != 0, output
    assert f"AUTH=on: the grants file {grants_file} {reason}" in output, output
    assert "embedded DynamoDB" not in output and "Context Services API on" not in output  # nothing was started


def _request(url: str, method: str = "GET", principal: str | None = "alice", body: dict | None = None):
    headers = {"ContactCenterId": "acme"}
    if principal:
        headers["X-CS-Principal"] = principal
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_grants_file_edits_errors_and_the_401_over_http(tmp_path):
    grants_file = tmp_path / "grants.json"
    grants_file.write_text(json.dumps({"grants": [{"principal": ALICE, "role": "Supervisor", "tenants": ["acme/"]}]}))
    make = _make_run(grants_file)
    lines: list[str] = []
    try:
        for line in make.stdout:
            lines.append(line)
            if "Context Services API on" in line:
                break
        text = "".join(lines)
        assert f"grants from {grants_file} (GRANTS_FILE: 1 principal), read again at every request" in text, text
        base = re.search(r"Context Services API on (http://\S+)", text).group(1)
        service = f"{base}/services/1"
        assert _request(service)[0] == 404  # allowed: no such service
        assert _request(f"{base}/services/start", "POST", body={"customer_id": "c"})[0] == 403  # Supervisor
        grants_file.write_text(json.dumps({"grants": [{"principal": ALICE, "role": "Administrator",
                                                       "tenants": ["acme/"]}]}))
        assert _request(f"{base}/services/start", "POST", body={"customer_id": "c"})[0] == 201
        grants_file.write_text(json.dumps({"grants": []}))  # revoked: the very next request is refused
        status, body = _request(service)
        assert (status, body["message"]) == (403, f"{ALICE} has no access grant")
        grants_file.write_text("{")
        status, body = _request(service)
        assert status == 403 and body["message"].startswith(f"the grants file {grants_file} is not valid JSON"), body
        status, body = _request(service, principal=None)
        assert status == 401 and "send the header X-CS-Principal: <name>" in body["message"], body
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        try:
            make.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
