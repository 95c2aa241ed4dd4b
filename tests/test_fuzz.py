"""Property-based requests generated from docs/openapi.json (schemathesis) against the local server:
whatever comes in, the answer is never a 5xx. Bounded: a fixed seed and a few examples per operation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from local.template import ROOT
from tests.test_local_server import _start, _stop


def test_generated_requests_never_get_a_server_error():
    process, info = _start()
    try:
        schemathesis = Path(sys.executable).with_name("schemathesis")
        result = subprocess.run(
            [str(schemathesis), "run", str(ROOT / "docs" / "openapi.json"), "--url", info["url"] + "/genesys/1/cs",
             "--checks", "not_a_server_error", "--max-examples", "5", "--seed", "7", "--workers", "2"],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:]
        assert " passed" in result.stdout
    finally:
        assert _stop(process, info) == 0
