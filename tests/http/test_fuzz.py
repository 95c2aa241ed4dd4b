"""Property-based requests generated from docs/openapi.json (schemathesis) against the local server:
whatever comes in, the answer is never a 5xx, its status code is one the document lists for the
operation, its content type is the documented one and its body matches the documented schema (issue
13 point 4). Bounded: a fixed seed, a few examples per operation, the run cut at five minutes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from local.template import ROOT
from tests.support import start_server, stop_server

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_generated_requests_get_documented_answers():
    process, info = start_server()
    try:
        schemathesis = Path(sys.executable).with_name("schemathesis")
        result = subprocess.run(
            [str(schemathesis), "run", str(ROOT / "docs" / "openapi.json"), "--url", info["url"] + "/genesys/1/cs",
             "--checks", CHECKS, "--max-examples", "5", "--seed", "7", "--workers", "2"],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
        report = result.stdout
        failures = report[report.find("FAILURES"):] if "FAILURES" in report else report
        assert result.returncode == 0, failures[:8000]
        assert " passed" in result.stdout
    finally:
        assert stop_server(process, info) == 0
