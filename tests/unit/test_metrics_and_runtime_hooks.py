"""The metrics' rules on their own (what a reply counts as), and the hooks the entry point registers
with Lambda's runtime for SnapStart."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lib.api.telemetry import request_metrics
from local.template import ROOT


def test_replay_header_decides_the_count():
    replay = {"statusCode": 201, "multiValueHeaders": {"X-Idempotent-Replay": ["true"]}, "body": "{}"}
    first = {"statusCode": 201, "headers": {}, "body": "{}"}
    assert request_metrics("POST", "/genesys/1/cs/services/start", replay) == {}
    assert request_metrics("POST", "/genesys/1/cs/services/start", first) == {"ServicesStarted": 1}


def test_purge_counts_the_services_it_removed():
    reply = {"statusCode": 200, "headers": {}, "body": json.dumps({"purged": 7})}
    assert request_metrics("POST", "/genesys/1/cs/maintenance/purge", reply) == {"ServicesPurged": 7}


def test_snapstart_hooks_are_registered_in_the_lambda_runtime(tmp_path):
    """Lambda's Python runtime provides `snapshot_restore_py`; the entry point registers its hooks
    with it when present (a stand-in module here records them)."""
    (tmp_path / "snapshot_restore_py.py").write_text(
        "before, after = [], []\n"
        "def register_before_snapshot(f, *a, **k): before.append(f)\n"
        "def register_after_restore(f, *a, **k): after.append(f)\n")
    code = ("import snapshot_restore_py as hooks, lib.api.entry as entry\n"
            "assert hooks.before == [entry.before_snapshot] and hooks.after == [entry.after_restore]\n"
            "print('registered')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "registered" in done.stdout, done.stderr
