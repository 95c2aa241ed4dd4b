"""Cold start of what is deployed.

1. Each function's package is built by the Makefile target `sam build` calls
   (`make build-<Function> ARTIFACTS_DIR=<tmp>`).
2. The package targets Lambda's arm64; on another machine its compiled extensions cannot load, so
   each distribution holding one is replaced by the same version's wheel for this machine (nothing
   else changes; the report lists what was replaced; on arm64 nothing is).
3. python3.13 imports the handler in fresh processes with only the package on sys.path (`-S`: no
   site-packages; `-B`: no bytecode written, as Lambda's read-only /var/task), the environment of
   a deployed function (Lambda's variables, template.yaml's, tracing on), then makes the first
   invocation with a sample event of events/ against a DynamoDB answered by the embedded moto
   server over loopback (seeded through the handlers).
4. Beside it, in the same rounds: `import boto3` alone, and a bare handler (boto3 client at init,
   one GetItem per invocation), both from boto3 of the package's version installed by python3.13
   (with its bytecode, as the Lambda runtime's own boto3 has).

    python -m bench.coldstart serve   # the seeded DynamoDB (used by measure(); prints one JSON line)
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import imports
from bench.harness import PAGE_TOKEN_SECRET, PRINCIPAL, ROOT, deployed_environment, median

CACHE = Path(tempfile.gettempdir()) / "context-services-bench-cache"
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}

CHILD = r"""
import json, sys, time
spec = json.loads(sys.argv[1])
sys.path[0:0] = spec["path"]
event = json.load(open(spec["event"])) if spec.get("event") else None

class Context:
    function_name = spec.get("function", "bench")
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    aws_request_id = "cold-start-request"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 29000

made = []
if spec.get("record"):  # an untimed run: the DynamoDB calls of the first invocation, as made
    import botocore.client
    _call = botocore.client.BaseClient._make_api_call
    def _recording(self, operation, params):
        made.append([operation, json.loads(json.dumps(params, default=str))])
        return _call(self, operation, params)
    botocore.client.BaseClient._make_api_call = _recording

started, cpu = time.perf_counter(), time.process_time()
module = __import__(spec["module"], fromlist=["_"])
imported, imported_cpu = time.perf_counter(), time.process_time()
out = {"import_s": imported - started, "import_cpu_s": imported_cpu - cpu}
if "botocore.client" in sys.modules:  # was a client built at init? (untimed: the clocks restart after)
    import gc
    base = sys.modules["botocore.client"].BaseClient
    frozen = gc.get_freeze_count()  # the handlers freeze what they imported: get_objects skips it
    if frozen:
        gc.unfreeze()
    out["clients_at_init"] = sum(1 for o in gc.get_objects() if isinstance(o, base))
    if frozen:
        gc.freeze()
else:
    out["clients_at_init"] = 0
for name, value in (spec.get("set") or {}).items():  # what the floor app's route is to do (untimed)
    setattr(module, name, value)
imported, imported_cpu = time.perf_counter(), time.process_time()
started, cpu = imported - out["import_s"], imported_cpu - out["import_cpu_s"]
if event is not None:
    result = getattr(module, spec["attribute"])(event, Context())
    done, done_cpu = time.perf_counter(), time.process_time()
    out.update(invocation_s=done - imported, total_s=done - started, total_cpu_s=done_cpu - cpu,
               status=result.get("statusCode"))
if spec.get("record"):
    out["calls"] = made
print("BENCH-RESULT " + json.dumps(out))
"""

BARE_HANDLER = '''"""A bare handler: a boto3 client built at init, one GetItem per invocation."""
import json
import os

import boto3

client = boto3.client("dynamodb")
TABLE = os.environ["TABLE_NAME"]


def lambda_handler(event, context):
    service_id = (event.get("pathParameters") or {}).get("service_id", "")
    found = client.get_item(TableName=TABLE, Key={"PK": {"S": "bare#" + service_id}, "SK": {"S": "#SERVICE"}},
                            ConsistentRead=True)
    return {"statusCode": 200 if "Item" in found else 404, "body": json.dumps({"service_id": service_id})}
'''


# ---------------------------------------------------------------- what is deployed


def functions() -> dict[str, str]:
    """Function name -> handler, for every function template.yaml builds with the Makefile."""
    from local import template

    found = {}
    for name, resource in template.load()["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function" and \
                (resource.get("Metadata") or {}).get("BuildMethod") == "makefile":
            found[name] = resource["Properties"]["Handler"]
    return found


def python313() -> str | None:
    """A python3.13 executable (the runtime's version), or None."""
    candidates = []
    try:
        candidates.append(subprocess.run(["sh", "scripts/find-python.sh"], cwd=ROOT, capture_output=True,
                                         text=True, check=True).stdout.strip())
    except subprocess.CalledProcessError:
        pass
    for version in ("3.13.0", "3.13"):
        try:
            candidates.append(subprocess.run(["pyenv", "which", "python3.13"], capture_output=True, text=True,
                                             check=True, env={**os.environ, "PYENV_VERSION": version}).stdout.strip())
        except (OSError, subprocess.CalledProcessError):
            pass
    candidates.append(shutil.which("python3.13") or "")
    for candidate in candidates:
        if not candidate:
            continue
        try:
            version = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                                     text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        if version == "(3, 13)":
            return candidate
    return None


def build(function: str, target: Path) -> dict[str, Any]:
    """`make build-<function> ARTIFACTS_DIR=<target>`; seconds taken."""
    started = time.time()
    done = subprocess.run(["make", "--no-print-directory", f"build-{function}", f"ARTIFACTS_DIR={target}"], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"make build-{function} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return {"command": f"make build-{function} ARTIFACTS_DIR=<tmp>", "build_seconds": round(time.time() - started, 1)}


def _elf_machine(path: Path) -> str | None:
    with path.open("rb") as handle:
        header = handle.read(20)
    if header[:4] != b"\x7fELF":
        return None
    return ELF_MACHINES.get(int.from_bytes(header[18:20], "little"), f"elf-{header[18]}")


def _distributions(artifact: Path) -> dict[str, tuple[str, str, list[str]]]:
    """File (relative path) -> (distribution, version, all of its files), from the RECORD files."""
    owner: dict[str, tuple[str, str, list[str]]] = {}
    for record in artifact.glob("*.dist-info/RECORD"):
        metadata = (record.parent / "METADATA").read_text(errors="replace")
        name = re.search(r"^Name: (.+)$", metadata, re.M).group(1).strip()
        version = re.search(r"^Version: (.+)$", metadata, re.M).group(1).strip()
        files = [line.split(",")[0] for line in record.read_text().splitlines() if line]
        for file in files:
            owner[file] = (name, version, files)
    return owner


def host_compatible(artifact: Path, python: str) -> list[dict[str, str]]:
    """Replace every distribution whose compiled extensions are for another machine by the same
    version built for this one; bytecode for python3.13 is added where the package had it."""
    host = _elf_machine(Path(python).resolve()) or platform.machine()
    owners = _distributions(artifact)
    foreign: dict[str, tuple[str, str, list[str], str]] = {}
    for library in artifact.rglob("*.so"):
        machine = _elf_machine(library)
        if machine and machine != host:
            relative = str(library.relative_to(artifact))
            if relative not in owners:
                raise RuntimeError(f"{relative} is built for {machine} and no RECORD names it")
            name, version, files = owners[relative]
            foreign[name] = (name, version, files, machine)
    swapped = []
    for name, version, files, machine in foreign.values():
        staging = CACHE / f"swap-{name}-{version}-{host}"
        if not (staging / ".complete").exists():
            shutil.rmtree(staging, ignore_errors=True)
            done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
                                   "--target", str(staging), "--platform", f"manylinux2014_{host}",
                                   "--implementation", "cp", "--python-version", "3.13", "--only-binary=:all:",
                                   f"{name}=={version}"], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"cannot fetch {name}=={version} for {host}: {done.stderr[-1500:]}")
            (staging / ".complete").write_text("")
        sources = [artifact / file for file in files if file.endswith(".py") and not file.startswith(("/", ".."))]
        had_313 = any((source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc").exists() for source in sources)
        for file in files:
            if not file.startswith(("/", "..")):
                (artifact / file).unlink(missing_ok=True)
        for item in staging.iterdir():
            if item.name == ".complete":
                continue
            destination = artifact / item.name
            if item.is_dir():
                shutil.copytree(item, destination, dirs_exist_ok=True)
            else:
                shutil.copy2(item, destination)
            if had_313 and item.is_dir():  # as the package's own bytecode (the Makefile's mode)
                subprocess.run([python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                                str(destination)], check=False)
        swapped.append({"distribution": name, "version": version, "built_for": machine, "replaced_by": host,
                        "bytecode_for_3.13_added": had_313})
    return swapped


def bytecode(artifact: Path) -> dict[str, int]:
    """How many modules of the package carry bytecode for 3.13 (else python3.13 compiles them at
    every cold start: Lambda's file system is read-only, so nothing is cached)."""
    tags: dict[str, int] = {}
    missing = 0
    modules = 0
    for source in artifact.rglob("*.py"):
        if "-swap-" in str(source):
            continue
        modules += 1
        cache = source.parent / "__pycache__"
        if not (cache / f"{source.stem}.cpython-313.pyc").exists():
            missing += 1
    for pyc in artifact.rglob("*.pyc"):
        match = re.search(r"\.(cpython-\d+)(?:\.opt-\d)?\.pyc$", pyc.name)
        if match:
            tags[match.group(1)] = tags.get(match.group(1), 0) + 1
    return {"modules": modules, "modules_without_3.13_bytecode": missing, **{f"pyc_{k}": v for k, v in tags.items()}}


def bare(python: str, artifact: Path) -> Path:
    """boto3 of the package's version, installed by python3.13 (so with its bytecode), and the bare
    handler beside it; cached between runs."""
    versions = {name: version for name, version, _ in _distributions(artifact).values() if name in ("boto3", "botocore")}
    key = f"bare-{versions.get('boto3')}-{versions.get('botocore')}"
    target = CACHE / key
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        pins = [f"{name}=={version}" for name, version in sorted(versions.items())]
        done = subprocess.run([python, "-m", "pip", "install", "--quiet", "--target", str(target), *pins],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"cannot install {pins} with python3.13: {done.stderr[-1500:]}")
        (target / ".complete").write_text("")
    (target / "bare_handler.py").write_text(BARE_HANDLER)
    subprocess.run([python, "-m", "compileall", "-q", str(target / "bare_handler.py")], check=True)
    return target


# ---------------------------------------------------------------- the seeded DynamoDB


SPARES = 4  # conversations seeded besides the measured one: one per function's import analysis


def serve() -> None:
    """Start the embedded DynamoDB on loopback, create the table, seed conversations through the
    handlers with events/start_*.json (the measured one, and SPARES that the import analyses may
    change), print {endpoint, service_id, spares}, serve until stdin closes."""
    from local import embedded_dynamodb, template

    server, endpoint = embedded_dynamodb.start()
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    import boto3

    template.create_table(boto3.client("dynamodb", endpoint_url=endpoint), os.environ["TABLE_NAME"])
    import contextlib

    from scripts import grants

    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the one line the parent reads
        if grants.main(["add", PRINCIPAL, "--role", "Administrator", "--tenant", "*", "--table",
                        os.environ["TABLE_NAME"], "--region", "us-east-1"]):
            raise RuntimeError("seeding: the benchmark's grant could not be written")
    seeded = []
    for _ in range(1 + SPARES):
        started = invoke(load_event("start_service"))
        if started["statusCode"] != 201:
            raise RuntimeError(f"seeding: start_service answered {started}")
        service_id = json.loads(started["body"])["service_id"]
        for name in ("start_state", "start_task"):
            reply = invoke(retarget(load_event(name), service_id))
            if reply["statusCode"] != 201:
                raise RuntimeError(f"seeding: {name} answered {reply}")
        seeded.append(service_id)
    print("BENCH-SEEDED " + json.dumps({"endpoint": endpoint, "service_id": seeded[0], "spares": seeded[1:]}),
          flush=True)
    sys.stdin.read()
    server.shutdown()


def load_event(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / f"{name}.json").read_text())


def retarget(event: dict[str, Any], service_id: str) -> dict[str, Any]:
    """The sample event, about `service_id` instead of the sample's service, made by the
    benchmark's caller (API Gateway's IAM identity: the functions check its grant)."""
    old = (event.get("pathParameters") or {}).get("service_id")
    event = json.loads(json.dumps(event).replace(old, service_id)) if old else json.loads(json.dumps(event))
    context = event.setdefault("requestContext", {})
    context["identity"] = {**(context.get("identity") or {}), "userArn": PRINCIPAL}
    return event


def handler_of(event: dict[str, Any]) -> str:
    """The handler template.yaml routes an event's resource to."""
    from local import template

    for route in template.api_routes():
        if route.path == event.get("resource") and route.method in ("ANY", event.get("httpMethod")):
            return route.handler
    raise LookupError(event.get("resource"))


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    import importlib

    from bench.client import context

    module, attribute = handler_of(event).rsplit(".", 1)
    return getattr(importlib.import_module(module), attribute)(event, context(module))


# The read each function's first invocation makes (a GET of the seeded conversation); a function
# not named here takes the first GET event of events/ that it routes.
SAMPLE_EVENTS = {"handlers.services.lambda_handler": "get_service", "handlers.states.lambda_handler": "get_state",
                 "handlers.tasks.lambda_handler": "get_task", "handlers.maintenance.lambda_handler": "export_stream"}


def sample_event(handler: str) -> str | None:
    """The events/ file a function's first invocation uses: a GET it routes."""
    named = SAMPLE_EVENTS.get(handler)
    if named and (ROOT / "events" / f"{named}.json").exists():
        return named
    candidates = sorted(ROOT.glob("events/*.json"), key=lambda p: (not p.name.startswith("get_"), p.name))
    for path in candidates:
        event = json.loads(path.read_text())
        if event.get("httpMethod") == "GET":
            try:
                if handler_of(event) == handler:
                    return path.stem
            except LookupError:
                continue
    return None


# ---------------------------------------------------------------- the stack floor

FIRST_INVOCATION_TARGET = 1.15  # the package's import + first invocation ÷ the stack floor's (issue 20)


def floor_package(python: str, work: Path) -> Path:
    """bench/floor_app.py in a folder of its own, compiled by python3.13 as the package is: imported
    next to a function's package, it is the stack floor (a minimal Powertools REST app with the
    production features) measured the same way as the function."""
    target = work / "floor"
    target.mkdir()
    shutil.copy2(ROOT / "bench" / "floor_app.py", target / "floor_app.py")
    subprocess.run([python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(target)],
                   check=True)
    return target


def floor_calls(calls: list[list[Any]]) -> list[list[Any]]:
    """Recorded [operation, parameters] as the floor app makes them: [client method, parameters]."""
    from botocore import xform_name

    return [[xform_name(operation), params] for operation, params in calls]


def analysis_events(handler: str, service_id: str, folder: Path) -> list[Path]:
    """Every sample event of events/ that template.yaml routes to `handler`, about `service_id`:
    reads first, then writes, deletes last; then one request with an invalid tenant header (the
    validation error path)."""
    folder.mkdir(parents=True)
    found = []
    for path in sorted(ROOT.glob("events/*.json")):
        event = load_event(path.stem)
        try:
            if handler_of(event) != handler:
                continue
        except LookupError:
            continue
        order = {"GET": 0, "DELETE": 2}.get(event.get("httpMethod"), 1)
        found.append((order, path.stem, retarget(event, service_id)))
    found.sort(key=lambda item: (item[0], item[1]))
    if found:
        invalid = json.loads(json.dumps(found[0][2]))
        for key in ("headers", "multiValueHeaders"):
            headers = invalid.get(key) or {}
            headers["ContactCenterId"] = ["not a tenant!"] if key == "multiValueHeaders" else "not a tenant!"
            invalid[key] = headers
        found.append((3, "invalid_tenant_header", invalid))
    paths = []
    for n, (_, name, event) in enumerate(found):
        path = folder / f"{n:02d}-{name}.json"
        path.write_text(json.dumps(event))
        paths.append(path)
    return paths


# ---------------------------------------------------------------- measuring


def _child_env(artifact: Path, endpoint: str, function: str | None) -> dict[str, str]:
    """A deployed function's environment: template.yaml's plain values for it, Lambda's own."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env.update(deployed_environment(function))
    env.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        AWS_ENDPOINT_URL_DYNAMODB=endpoint, TABLE_NAME=os.environ["TABLE_NAME"], PAGE_TOKEN_SECRET=PAGE_TOKEN_SECRET,
        EVENT_BUS_NAME="cold-start-feed",  # the publisher's bus (a !Ref the template resolves when deployed)
        AWS_LAMBDA_FUNCTION_NAME="cold-start", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512", LAMBDA_TASK_ROOT=str(artifact),
        AWS_EXECUTION_ENV="AWS_Lambda_python3.13",
        _X_AMZN_TRACE_ID="Root=1-00000000-000000000000000000000001;Parent=0000000000000001;Sampled=1",
        PYTHONHASHSEED="random",
    )
    return env


def _fresh(python: str, spec: dict[str, Any], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([python, "-B", "-S", "-c", CHILD, json.dumps(spec)], cwd=cwd, env=env, capture_output=True,
                          text=True)
    process = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH-RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"cold start of {spec['module']} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("BENCH-RESULT "))
    result["process_s"] = process
    return result


def measure(runs: int, which: list[str] | None = None) -> dict[str, Any]:
    """Build, then time fresh processes in interleaved rounds. Returns the figures per function
    plus the baselines, or {"status": "not available: ..."}."""
    python = python313()
    if python is None:
        return {"status": "not available: no python3.13 on this machine (pyenv 3.13.0 expected)"}
    chosen = functions()
    if which:
        chosen = {name: handler for name, handler in chosen.items() if name in which}
    from local import template

    work = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    snapstart = (template.load().get("Globals", {}).get("Function", {}).get("SnapStart") or {}).get("ApplyOn")
    report: dict[str, Any] = {"python": python, "runs": runs, "snapstart": snapstart}
    server = None
    try:
        artifacts: dict[str, Path] = {}
        for name in list(chosen):
            target = work / name
            try:
                report.setdefault("builds", {})[name] = build(name, target)
            except RuntimeError as error:
                report[name] = {"status": f"not available: {str(error).strip()[-400:]}"}
                del chosen[name]
                continue
            swapped = host_compatible(target, python)
            report["builds"][name].update(replaced_for_this_machine=swapped, bytecode=bytecode(target))
            artifacts[name] = target
        if not artifacts:
            return {**report, "status": "not available: no package could be built"}
        first = next(iter(artifacts.values()))
        bare_dir = bare(python, first)
        from bench.harness import ORIGINAL_ENVIRONMENT

        env_server = {**(ORIGINAL_ENVIRONMENT or os.environ),
                      "TABLE_NAME": os.environ.get("TABLE_NAME", "context-services-bench")}
        for key in ("AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT", "_X_AMZN_TRACE_ID"):
            env_server.pop(key, None)
        for key in ("ACCESS_MODE", "AUTH"):
            env_server.pop(key, None)  # the seeding calls the handlers open, as the local run does
        env_server.update(POWERTOOLS_TRACE_DISABLED="true", POWERTOOLS_METRICS_DISABLED="true",
                          POWERTOOLS_LOG_LEVEL="WARNING", AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", PAGE_TOKEN_SECRET=PAGE_TOKEN_SECRET)
        # Its log (a line per request) goes to a file: a pipe nobody reads fills after some hundred
        # requests and stops the server mid-run (a fresh process then times out on its first call).
        server_log = work / "dynamodb.log"
        with server_log.open("w") as log:
            server = subprocess.Popen([sys.executable, "-m", "bench.coldstart", "serve"], cwd=ROOT, env=env_server,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        line = server.stdout.readline()
        while line and not line.startswith("BENCH-SEEDED "):
            line = server.stdout.readline()
        if not line:
            raise RuntimeError(f"the seeded DynamoDB did not start: {server_log.read_text()[-2000:]}")
        seeded = json.loads(line.removeprefix("BENCH-SEEDED "))
        events_dir = work / "events"
        events_dir.mkdir()
        specs: dict[str, dict[str, Any]] = {}
        bare_event = events_dir / "bare.json"
        bare_event.write_text(json.dumps(retarget(load_event("get_service"), seeded["service_id"])))
        specs["import boto3"] = {"path": [str(bare_dir)], "module": "boto3"}
        specs["bare handler"] = {"path": [str(bare_dir)], "module": "bare_handler", "attribute": "lambda_handler",
                                 "event": str(bare_event)}
        used_events: dict[str, str | None] = {}
        for name, handler in chosen.items():
            module, attribute = handler.rsplit(".", 1)
            event_name = sample_event(handler)
            used_events[name] = event_name
            spec: dict[str, Any] = {"path": [str(artifacts[name])], "module": module, "attribute": attribute,
                                    "function": name}
            if event_name:
                event_file = events_dir / f"{name}.json"
                event_file.write_text(json.dumps(retarget(load_event(event_name), seeded["service_id"])))
                spec["event"] = str(event_file)
            specs[name] = spec
        cwd = work / "cwd"
        cwd.mkdir()
        floor_dir = floor_package(python, work)
        owner: dict[str, str] = {}  # subject -> the function whose package and environment it runs with
        for name in list(chosen):
            if "event" not in specs[name]:
                continue
            env = _child_env(artifacts[name], seeded["endpoint"], name)
            recorded = _fresh(python, {**specs[name], "record": True}, env, cwd)
            subject = f"floor {name}"
            specs[subject] = {"path": [str(floor_dir), str(artifacts[name])], "module": "floor_app",
                              "attribute": "lambda_handler", "function": name, "event": specs[name]["event"],
                              "set": {"PENDING": floor_calls(recorded["calls"])}}
            owner[subject] = name
            report.setdefault("floor_calls", {})[name] = [call[0] for call in recorded["calls"]]
        samples: dict[str, list[dict[str, Any]]] = {subject: [] for subject in specs}
        order = list(specs)
        for n in range(runs):
            rotated = order[n % len(order):] + order[:n % len(order)]
            for subject in rotated:
                function = owner.get(subject, subject)
                artifact = artifacts.get(function, bare_dir)
                env = _child_env(artifact, seeded["endpoint"], function if function in chosen else None)
                samples[subject].append(_fresh(python, specs[subject], env, cwd))
        spares = list(seeded.get("spares") or [])
        for name in sorted(chosen, key=lambda n: n == "MaintenanceFunction"):  # its purge last
            target = spares.pop(0) if spares else seeded["service_id"]
            events = analysis_events(chosen[name], target, events_dir / f"analysis-{name}")
            report.setdefault("unused_imports", {})[name] = imports.analyse(
                python, artifacts[name], chosen[name], name, events,
                _child_env(artifacts[name], seeded["endpoint"], name))
    finally:
        if server is not None:
            server.stdin.close()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.terminate()
        shutil.rmtree(work, ignore_errors=True)

    def med(subject: str, key: str) -> float:
        return median([sample[key] for sample in samples[subject] if key in sample])

    boto3_s = med("import boto3", "import_s")
    bare_import, bare_total = med("bare handler", "import_s"), med("bare handler", "total_s")
    boto3_cpu, bare_total_cpu = med("import boto3", "import_cpu_s"), med("bare handler", "total_cpu_s")
    report["import_boto3_median_s"] = round(boto3_s, 4)
    report["import_boto3_cpu_s"] = round(boto3_cpu, 4)
    report["bare_handler"] = {"import_s": round(bare_import, 4), "first_invocation_s": round(bare_total, 4),
                              "invocation_only_s": round(med("bare handler", "invocation_s"), 4),
                              "process_s": round(med("bare handler", "process_s"), 4),
                              "first_invocation_cpu_s": round(bare_total_cpu, 4),
                              "clients_built_at_init": max(s.get("clients_at_init", 0) for s in samples["bare handler"]),
                              "statuses": sorted({s.get("status") for s in samples["bare handler"]}),
                              "event": "events/get_service.json (one GetItem)"}
    # The ratios that other tools read (artifact_ratio_to_boto3, first_invocation_ratio) are of CPU
    # time: on this shared machine a fresh process also waits for a CPU, and the longer it runs the
    # more it waits, so wall-time ratios grow with the machine's load; wall figures are beside.
    for name in chosen:
        imported, imported_cpu = med(name, "import_s"), med(name, "import_cpu_s")
        entry: dict[str, Any] = {
            "median_s": round(imported, 4),
            "ratio_to_boto3": round(imported / boto3_s, 3),
            "artifact_ratio_to_boto3": round(imported_cpu / boto3_cpu, 3),
            "wall_artifact_ratio_to_boto3": round(imported / boto3_s, 3),
            "import_s": round(imported, 4),
            "import_cpu_s": round(imported_cpu, 4),
            "import_ratio_to_bare_handler": round(imported / bare_import, 3),
            "process_s": round(med(name, "process_s"), 4),
            "clients_built_at_init": max(sample.get("clients_at_init", 0) for sample in samples[name]),
            "event": f"events/{used_events[name]}.json" if used_events[name] else None,
        }
        if used_events[name]:
            total, total_cpu = med(name, "total_s"), med(name, "total_cpu_s")
            entry.update(first_invocation_s=round(total, 4), first_invocation_cpu_s=round(total_cpu, 4),
                         invocation_only_s=round(med(name, "invocation_s"), 4),
                         first_invocation_ratio=round(total_cpu / bare_total_cpu, 3),
                         wall_first_invocation_ratio=round(total / bare_total, 3),
                         statuses=sorted({s.get("status") for s in samples[name]}))
        subject = f"floor {name}"
        if samples.get(subject):
            floor_import, floor_total = med(subject, "import_cpu_s"), med(subject, "total_cpu_s")
            report.setdefault("floor", {})[name] = {
                "import_cpu_s": round(floor_import, 4), "import_s": round(med(subject, "import_s"), 4),
                "first_invocation_cpu_s": round(floor_total, 4),
                "first_invocation_s": round(med(subject, "total_s"), 4),
                "process_s": round(med(subject, "process_s"), 4),
                "clients_built_at_init": max(sample.get("clients_at_init", 0) for sample in samples[subject]),
                "statuses": sorted({sample.get("status") for sample in samples[subject]}),
                "calls": report.get("floor_calls", {}).get(name)}
            entry.update(import_to_floor=round(imported_cpu / floor_import, 3),
                         first_invocation_to_floor=round(entry["first_invocation_cpu_s"] / floor_total, 3),
                         wall_first_invocation_to_floor=round(entry["first_invocation_s"] / med(subject, "total_s"), 3),
                         floor_first_invocation_cpu_s=round(floor_total, 4),
                         target_first_invocation_to_floor=FIRST_INVOCATION_TARGET,
                         met=entry["first_invocation_cpu_s"] / floor_total <= FIRST_INVOCATION_TARGET)
        report[name] = entry
    return report


# ---------------------------------------------------------------- the development environment


def dev_venv_imports(runs: int) -> dict[str, Any]:
    """The earlier figure, kept for comparison: median wall time of importing each handler module
    (and building its app) in fresh processes of the development virtualenv, against `import
    boto3` alone, interleaved; the project's bytecode compiled."""
    snippet = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_LAMBDA", "LAMBDA_TASK_ROOT", "_X_AMZN"))}
    env.update(POWERTOOLS_TRACE_DISABLED="true")
    subprocess.run([sys.executable, "-m", "compileall", "-q", "lib", "handlers"], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    subjects = {"boto3": "import boto3"}
    for module in ("handlers.services", "handlers.states", "handlers.tasks"):
        subjects[module] = f"import {module} as m; m.app"
    subjects["stack floor (boto3 + Powertools resolver with validation, Logger, Metrics)"] = (
        "import boto3, aws_lambda_powertools.event_handler.openapi.params, aws_lambda_powertools.logging, "
        "aws_lambda_powertools.metrics")
    traced_env = {**env, "AWS_LAMBDA_FUNCTION_NAME": "bench", "LAMBDA_TASK_ROOT": str(ROOT)}
    traced_env.pop("POWERTOOLS_TRACE_DISABLED", None)
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    samples["handlers.services (tracing on)"] = []
    for _ in range(runs):
        for name, statement in subjects.items():
            samples[name].append(_timed_import(snippet.format(statement=statement), env))
        samples["handlers.services (tracing on)"].append(
            _timed_import(snippet.format(statement=subjects["handlers.services"]), traced_env))
    base = median(samples["boto3"])
    report: dict[str, Any] = {"runs": runs, "boto3_median_s": round(base, 4)}
    for name, values in samples.items():
        if name != "boto3":
            report[name] = {"median_s": round(median(values), 4), "ratio_to_boto3": round(median(values) / base, 3)}
    return report


def _timed_import(code: str, env: dict[str, str]) -> float:
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            check=True)
    return float(output.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:
        os.environ.setdefault("TABLE_NAME", "context-services-bench")
        print(json.dumps(measure(int(sys.argv[1]) if sys.argv[1:] else 3, sys.argv[2:] or None), indent=2))
