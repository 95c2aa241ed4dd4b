"""What a function's import loads that no request uses.

Two fresh python3.13 processes (the built package alone on sys.path, a deployed function's
environment): one imports the handler with `-X importtime` (what each module costs); the other
imports it with a profiler hook on every thread from the start (sys.setprofile /
threading.setprofile) and then invokes every sample event of events/ that template.yaml routes to
the function against the seeded DynamoDB (bench/coldstart.py), writes after reads, plus a request
that fails validation. Each Python function called (at init or in a request) is noted by its
file (a module's or a class's body, run by the import itself, is not a function), each C function
by its module.

A module is "unused" when the import loaded it and none of its functions ran, neither at init (the
DynamoDB client built at import uses boto3) nor in those requests (a package counts as used when
any module under it was); its cost is its own time in `-X importtime`. Unused modules are grouped
under the first unused module on their import chain (the one whose import pulled them in), with
that chain up to the handler: what to remove, and where it comes from. A module read only for its
constants (no function called) is listed too: the list is evidence to review, not a verdict.

    python -m bench.imports  # not run alone: bench/coldstart.py calls analyse() with its server
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

CHILD = r"""
import json, sys, threading
spec = json.loads(sys.argv[1])
sys.path[0:0] = spec["path"]
files, c_modules = set(), set()

def hook(frame, event, arg):
    if event == "call":
        if frame.f_code.co_flags & 1:  # CO_OPTIMIZED: a function, not a module's or class's body
            files.add(frame.f_code.co_filename)
    elif event == "c_call":
        c_modules.add(getattr(arg, "__module__", None) or "")

class Context:
    function_name = spec["function"]
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    aws_request_id = "imports-request"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 29000

if spec["trace"]:
    sys.setprofile(hook)
    threading.setprofile(hook)
module = __import__(spec["module"], fromlist=["_"])
loaded = {name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())}
statuses = []
if spec["trace"]:
    handler = getattr(module, spec["attribute"])
    try:
        for path in spec["events"]:
            event = json.load(open(path))
            statuses.append([path.rsplit("/", 1)[-1], handler(event, Context()).get("statusCode")])
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
print("BENCH-IMPORTS " + json.dumps({"loaded": loaded, "files": sorted(files), "c_modules": sorted(c_modules),
                                      "statuses": statuses}))
"""

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def tree(importtime: str) -> list[dict[str, Any]]:
    """The nodes of `-X importtime` output, each with its children and parent (a module appears once
    per import that ran its code: a circular import can show a name twice)."""
    pending: dict[int, list[dict[str, Any]]] = {}
    nodes = []
    for line in importtime.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        level = (len(match[3]) - 1) // 2
        node = {"name": match[4], "self_us": int(match[1]), "cumulative_us": int(match[2]),
                "children": pending.pop(level + 1, []), "parent": None}
        for child in node["children"]:
            child["parent"] = node
        pending.setdefault(level, []).append(node)
        nodes.append(node)
    return nodes


def chain(node: dict[str, Any]) -> list[str]:
    """The import chain from `node` up to the first module the process imported."""
    names = []
    while node is not None:
        names.append(node["name"])
        node = node["parent"]
    return names


def unused(nodes: list[dict[str, Any]], loaded: dict[str, str | None], files: set[str], c_modules: set[str],
           root: str) -> dict[str, Any]:
    """The modules under `root`'s import whose functions never ran, grouped by what pulled them in."""
    used_names = set()
    for name, file in loaded.items():
        if (file and file in files) or name in c_modules:
            used_names.add(name)
    # A package is used when anything under it is.
    for name in list(used_names):
        parts = name.split(".")
        used_names.update(".".join(parts[:n]) for n in range(1, len(parts)))
    top = next((node for node in nodes if node["name"] == root), None)
    if top is None:
        return {"status": f"{root} not in the import time output"}
    under: list[dict[str, Any]] = []
    stack = [top]
    while stack:
        node = stack.pop()
        under.append(node)
        stack.extend(node["children"])
    idle = {id(node) for node in under if node["name"] not in used_names and node["name"] in loaded}
    groups: dict[str, dict[str, Any]] = {}
    for node in under:
        if id(node) not in idle:
            continue
        head = node
        while head["parent"] is not None and id(head["parent"]) in idle:
            head = head["parent"]
        group = groups.setdefault(head["name"], {"module": head["name"], "imported_by": chain(head)[1:],
                                                 "modules": 0, "self_ms": 0.0})
        group["modules"] += 1
        group["self_ms"] += node["self_us"] / 1000
    ordered = sorted(groups.values(), key=lambda group: -group["self_ms"])
    for group in ordered:
        group["self_ms"] = round(group["self_ms"], 1)
    total_import = top["cumulative_us"] / 1000
    idle_ms = sum(node["self_us"] for node in under if id(node) in idle) / 1000
    return {"import_ms": round(total_import, 1), "unused_modules": len(idle), "unused_self_ms": round(idle_ms, 1),
            "unused_share": round(idle_ms / total_import, 3) if total_import else None, "groups": ordered}


def _child(python: str, spec: dict[str, Any], env: dict[str, str], importtime: bool) -> tuple[dict[str, Any], str]:
    flags = ["-X", "importtime"] if importtime else []
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as cwd:
        done = subprocess.run([python, "-B", "-S", *flags, "-c", CHILD, json.dumps(spec)], cwd=cwd, env=env,
                              capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH-IMPORTS ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"import analysis of {spec['module']} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("BENCH-IMPORTS ")), done.stderr


def analyse(python: str, artifact: Path, handler: str, function: str, events: list[Path],
            env: dict[str, str]) -> dict[str, Any]:
    """Import `handler` from the built `artifact` in two fresh processes: one with `-X importtime`
    (what each module costs), one with a profiler hook from the start that then invokes `events`
    (what runs, at init or in a request: the hook would distort the costs); list what the import
    loaded and nothing ran."""
    module, attribute = handler.rsplit(".", 1)
    spec = {"path": [str(artifact)], "module": module, "attribute": attribute, "function": function,
            "events": [str(path) for path in events]}
    timed, importtime = _child(python, {**spec, "trace": False}, env, importtime=True)
    traced, _ = _child(python, {**spec, "trace": True}, env, importtime=False)
    result = unused(tree(importtime), timed["loaded"], set(traced["files"]), set(traced["c_modules"]), module)
    result["requests"] = traced["statuses"]
    result["asyncio_loaded"] = "asyncio" in timed["loaded"]
    result["appsync_loaded"] = any(".appsync" in name for name in timed["loaded"])
    return result
