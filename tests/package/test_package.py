"""The Lambda package as `sam build` makes it (Makefile: build-<Function>): what it holds, its size,
that its bytecode is the runtime's (CPython 3.13, never recompiled at a cold start), and that it
runs on its own: a twin built for this machine's CPU serves a sample event from events/ with nothing
but the standard library and the package on sys.path, printing its log line and EMF metrics.

The dependencies are cached per requirements.txt under build/lambda-deps (the first run downloads
them from PyPI, later runs copy them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from local.template import ROOT

PROJECT_DIRS = ("lib", "handlers")
NEVER_PACKAGED = {"local", "tests", "docs", "bench", "events", "scripts", "moto", "pytest", "_pytest", "cfnlint",
                  "werkzeug", "yaml", "ruff", "schemathesis", "hypothesis", "flask", "swagger_ui_bundle", "pip",
                  "setuptools", ".venv", "build", "template.yaml", "Makefile", "README.md", "requirements.txt"}
RUNTIME_PACKAGES = {"lib", "handlers", "aws_lambda_powertools", "pydantic", "pydantic_core", "boto3", "botocore",
                    "aws_xray_sdk"}
# Budgets with some room over what the package measured when they were set (26 MB unpacked, 9.4 MB zipped);
# Lambda's own limits are 250 MB unpacked and 50 MB zipped for a direct upload.
MAX_UNPACKED_BYTES = 40_000_000
MAX_ZIPPED_BYTES = 14_000_000
ELF_AARCH64 = 183


def _python313() -> str | None:
    found = subprocess.run(["make", "-s", "--no-print-directory", "lambda-python"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return found or None


PYTHON313 = _python313()


def _build(target: Path, platform: str | None = None, function: str = "ServicesFunction") -> Path:
    if PYTHON313 is None:
        pytest.skip("Python 3.13 (the Lambda runtime's) is not installed")
    command = ["make", "-s", "--no-print-directory", f"build-{function}", f"ARTIFACTS_DIR={target}"]
    if platform:
        command.append(f"LAMBDA_PLATFORM={platform}")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """The package for Lambda: arm64, Python 3.13."""
    return _build(tmp_path_factory.mktemp("ServicesFunction"))


@pytest.fixture(scope="module")
def native_artifact(tmp_path_factory) -> Path:
    """The same package with the binary wheels of this machine, so it can be run here."""
    machine = os.uname().machine
    return _build(tmp_path_factory.mktemp("native"), f"manylinux2014_{machine}")


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_holds_the_runtime_code_and_dependencies_only(artifact):
    top = {path.name for path in artifact.iterdir()}
    assert RUNTIME_PACKAGES <= top
    assert not top & NEVER_PACKAGED, top & NEVER_PACKAGED
    for folder in PROJECT_DIRS:
        packaged = {p.relative_to(artifact).as_posix() for p in (artifact / folder).rglob("*.py")}
        source = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*.py")}
        assert packaged == source


def test_size_within_budget(artifact, tmp_path):
    unpacked = sum(path.stat().st_size for path in _files(artifact))
    archive = tmp_path / "package.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in _files(artifact):
            zipped.write(path, path.relative_to(artifact).as_posix())
    assert unpacked < MAX_UNPACKED_BYTES, f"{unpacked / 1e6:.1f} MB unpacked"
    assert archive.stat().st_size < MAX_ZIPPED_BYTES, f"{archive.stat().st_size / 1e6:.1f} MB zipped"


def test_bytecode_is_cpython_313_and_never_checked_against_file_times(artifact):
    magic = bytes.fromhex(subprocess.run([PYTHON313, "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
                                         capture_output=True, text=True, check=True).stdout.strip())
    compiled = [path for path in _files(artifact) if path.suffix == ".pyc"]
    sources = [path for path in _files(artifact) if path.suffix == ".py"]
    assert len(compiled) >= len(sources) > 500
    for path in compiled:
        assert path.name.endswith(".cpython-313.pyc"), path
        header = path.read_bytes()[:8]
        assert header[:4] == magic, path
        # PEP 552 flags: 0b01 = hash-based, unchecked: valid whatever the zip does to file times.
        assert int.from_bytes(header[4:8], "little") == 0b01, path
    for source in sources:
        assert (source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc").is_file(), source


def test_binaries_are_for_arm64(artifact):
    binaries = [path for path in _files(artifact) if path.suffix == ".so"]
    assert binaries, "pydantic_core ships a compiled module"
    for path in binaries:
        header = path.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == ELF_AARCH64, path


def test_every_aws_client_the_code_creates_has_its_api_model(artifact):
    used = set()
    for folder in PROJECT_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r"""\b(?:client|resource|service_client)\(\s*["']([a-z0-9-]+)["']""",
                                   path.read_text()))
    assert {"dynamodb", "s3", "sqs"} <= used  # the store's own, and the other services' (table.service_client)
    missing = {service for service in used if not (artifact / "botocore" / "data" / service).is_dir()}
    assert not missing, f"add {sorted(missing)} to BOTOCORE_SERVICES in the Makefile"


RUN_HANDLER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
event = json.load(open(sys.argv[2]))
event["requestContext"]["identity"]["userArn"] = "arn:aws:sts::123456789012:assumed-role/ops/alice"
from handlers import services

class Context:
    function_name = "ServicesFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ServicesFunction"
    aws_request_id = "lambda-request-1"
    def get_remaining_time_in_millis(self):
        return 29000

result = services.lambda_handler(event, Context())
print("RESULT " + json.dumps(result))
print("LOADED " + json.dumps({name: getattr(module, "__file__", None) for name, module in sys.modules.items()
                              if name.split(".")[0] in ("lib", "handlers", "pydantic_core", "moto", "local")}))
"""


@pytest.fixture(scope="module")
def dynamodb():
    """A DynamoDB for the package to talk to: the embedded one, table from template.yaml, one grant."""
    import boto3

    from local import embedded_dynamodb, template

    server, endpoint = embedded_dynamodb.start()
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="package", aws_secret_access_key="package")
    template.create_table(client, "package-test")
    client.put_item(TableName="package-test", Item={
        "PK": {"S": "ACCESS#arn:aws:iam::123456789012:role/ops"}, "SK": {"S": "#GRANT"}, "type": {"S": "grant"},
        "role": {"S": "Administrator"}, "tenants": {"L": [{"S": "sample/"}]}})
    yield endpoint
    server.shutdown()


def _run_packaged(native_artifact: Path, endpoint: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        "PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_FUNCTION_NAME": "ServicesFunction",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "package",
        "AWS_SECRET_ACCESS_KEY": "package", "AWS_ENDPOINT_URL_DYNAMODB": endpoint, "TABLE_NAME": "package-test",
        "POWERTOOLS_SERVICE_NAME": "context-services", "POWERTOOLS_METRICS_NAMESPACE": "ContextServices",
        "POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_TRACE_DISABLED": "true", **env,
    }
    # -S: no site-packages, -E: no PYTHON* variables; only the standard library and the package.
    return subprocess.run([PYTHON313, "-S", "-E", "-c", RUN_HANDLER, str(native_artifact),
                           str(ROOT / "events" / "start_service.json")],
                          env=environment, capture_output=True, text=True, timeout=120)


def test_packaged_handler_serves_a_sample_event_with_its_log_line_and_metrics(native_artifact, dynamodb):
    before = {path: path.stat().st_mtime_ns for path in native_artifact.rglob("*.pyc")}
    done = _run_packaged(native_artifact, dynamodb, ACCESS_MODE="iam", PAGE_TOKEN_SECRET="s" * 32)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    result = json.loads(next(line for line in lines if line.startswith("RESULT "))[7:])
    assert result["statusCode"] == 201, result
    loaded = json.loads(next(line for line in lines if line.startswith("LOADED "))[7:])
    assert all(path and path.startswith(str(native_artifact)) for path in loaded.values()), loaded
    records = [json.loads(line) for line in lines if line.startswith("{")]
    request_log = [r for r in records if r.get("message") == "request"]
    assert len(request_log) == 1
    assert request_log[0]["status"] == 201 and request_log[0]["route"] == "/genesys/1/cs/services/start"
    assert request_log[0]["principal"] == "arn:aws:iam::123456789012:role/ops"
    assert "customer-1" not in done.stdout  # the sample's customer id is never logged
    emf = [r for r in records if "_aws" in r]
    assert any(r.get("ServicesStarted") == [1.0] or r.get("ServicesStarted") == 1.0 for r in emf), emf
    assert any(r.get("ColdStart") == [1.0] or r.get("ColdStart") == 1.0 for r in emf), emf
    # Nothing was recompiled: every module came from the bytecode the build made.
    after = {path: path.stat().st_mtime_ns for path in native_artifact.rglob("*.pyc")}
    assert after == before


def test_packaged_handler_refuses_to_start_without_its_security_settings(native_artifact, dynamodb):
    done = _run_packaged(native_artifact, dynamodb, PAGE_TOKEN_SECRET="s" * 32)
    assert done.returncode != 0 and "ACCESS_MODE is not set" in done.stderr
    done = _run_packaged(native_artifact, dynamodb, ACCESS_MODE="iam")
    assert done.returncode != 0 and "PAGE_TOKEN_SECRET_ARN is missing" in done.stderr


def test_the_viewer_package_serves_its_page_in_a_fresh_runtime(tmp_path):
    """The ViewerFunction package holds its handler and viewer/ only (no lib/): imported by the Lambda
    runtime's Python with nothing else on its path, it serves the page. (Its package marker once was
    handlers/__init__.py, which imports lib/: the deployed viewer could not start.)"""
    target = _build(tmp_path / "ViewerFunction", function="ViewerFunction")
    assert not (target / "lib").exists()
    script = ("import json, sys\nsys.path.insert(0, sys.argv[1])\nfrom handlers import viewer\n"
              "reply = viewer.lambda_handler({'httpMethod': 'GET', 'path': '/viewer/', 'pathParameters': "
              "{'proxy': 'index.html'}}, None)\n"
              "print(json.dumps({'status': reply['statusCode'], 'type': reply['headers'].get('Content-Type'), "
              "'body': reply['body'][:2000], 'modules': sorted(m for m in sys.modules if m.split('.')[0] in "
              "('lib', 'handlers'))}))")
    run = subprocess.run([PYTHON313, "-S", "-E", "-c", script, str(target)], capture_output=True, text=True,
                         timeout=60, env={"PATH": os.environ.get("PATH", "")}, cwd=tmp_path)  # not the repo
    assert run.returncode == 0, run.stderr[-3000:]
    served = json.loads(run.stdout.strip().splitlines()[-1])
    assert served["status"] == 200 and served["type"].startswith("text/html")
    assert "<html" in served["body"].lower()
    assert served["modules"] == ["handlers", "handlers.viewer"]
