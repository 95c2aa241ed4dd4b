"""The local enforcing mode's grants file (`AUTH=on make run`; README, Access): a file that is not
valid grants stops the server at start with the reason; a missing one is said at start and each
request is refused saying how to create it; an edit (a grant given, revoked, or the file broken)
applies to the very next request; a request without a caller is told to send X-CS-Principal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from local.template import ROOT
from tests.test_local_server import BASE, http, running

ALICE = "arn:aws:iam::000000000000:user/alice"
ACME = {"ContactCenterId": "acme", "X-CS-Principal": "alice"}


def _write(path, grants) -> None:
    path.write_text(json.dumps({"grants": grants}))


def _start_failure(env: dict[str, str]) -> subprocess.CompletedProcess:
    """A server start that must fail: its exit and output (killed after 120 s if it serves instead)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    return subprocess.run([sys.executable, "-m", "local.server"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**clean, "PORT": "0", "TABLE_NAME": "local-test", "LOCAL_WARM": "0",
                                            "AUTH": "on", **env})


def test_a_malformed_grants_file_stops_the_start_with_the_reason(tmp_path):
    broken = tmp_path / "grants.json"
    broken.write_text('{"grants": [{"principal": "arn:aws:iam::000000000000:user/alice", "role": "Admin"')
    done = _start_failure({"GRANTS_FILE": str(broken)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"AUTH=on: the grants file {broken} is not JSON: Expecting ',' delimiter at line 1, column" in done.stderr
    assert "Context Services API on" not in done.stdout

    _write(broken, [{"principal": ALICE, "role": "Admin", "tenants": ["acme/"]}])
    done = _start_failure({"GRANTS_FILE": str(broken)})
    assert done.returncode == 1
    assert (f'AUTH=on: the grants file {broken}, grant 1 ({ALICE}): role must be Administrator or Supervisor, '
            'not "Admin"') in done.stderr

    _write(broken, [{"principal": "alice", "role": "Supervisor", "tenants": ["acme"]}])
    done = _start_failure({"GRANTS_FILE": str(broken)})
    assert done.returncode == 1 and "grant 1: principal must be an ARN" in done.stderr


def test_missing_file_then_every_edit_applies_to_the_next_request(tmp_path):
    grants = tmp_path / "grants.json"
    with running({"AUTH": "on", "GRANTS_FILE": str(grants), "LOCAL_WARM": "0"}) as server:
        said = "".join(server["lines"])
        assert f"access: grants file {grants} does not exist: every request is refused (403)" in said

        status, _, body = http(server, "GET", f"{BASE}/services/1", headers=ACME)
        assert status == 403 and body["exception"] == "ForbiddenException"
        assert f"the grants file {grants} does not exist (create it: python -m scripts.grants add {ALICE}" \
            in body["message"]

        _write(grants, [{"principal": ALICE, "role": "Supervisor", "tenants": ["acme/"]}])
        status, _, body = http(server, "GET", f"{BASE}/services/1", headers=ACME)
        assert (status, body["exception"]) == (404, "NotFoundException"), body  # allowed: the service is unknown

        _write(grants, [{"principal": ALICE, "role": "Supervisor", "tenants": ["beta/"]}])  # revoked for acme
        status, _, body = http(server, "GET", f"{BASE}/services/1", headers=ACME)
        assert status == 403 and body["message"] == f'ContactCenterId/GroupId "acme/" is not granted to {ALICE}'

        grants.write_text('{"grants": [')
        status, _, body = http(server, "GET", f"{BASE}/services/1", headers=ACME)
        assert status == 500 and body["message"].startswith(f"the grants file {grants} is not JSON: "), body

        _write(grants, [{"principal": ALICE, "role": "Administrator", "tenants": ["acme/"]}])
        status, _, body = http(server, "POST", f"{BASE}/services/start", {"customer_id": "c-1"}, headers=ACME)
        assert status == 201 and body["service_id"]

        status, _, body = http(server, "GET", f"{BASE}/services/1", headers={"ContactCenterId": "acme"})
        assert status == 401 and body["exception"] == "UnauthorizedException"
        assert "send X-CS-Principal: <name>" in body["message"] and str(grants) in body["message"]


def test_a_valid_file_is_counted_at_start(tmp_path):
    grants = tmp_path / "grants.json"
    _write(grants, [{"principal": ALICE, "role": "Supervisor", "tenants": ["acme/"]},
                    {"principal": "arn:aws:iam::000000000000:user/bob", "role": "Administrator", "tenants": ["*"]}])
    with running({"AUTH": "on", "GRANTS_FILE": str(grants), "LOCAL_WARM": "0"}) as server:
        assert f"access: grants file {grants}: 2 grants (read again at each request" in "".join(server["lines"])
