"""`cs-import` as a user runs it, against two local runs (`python -m local.server`, as `make run`
starts it, on free ports): varied conversations created over HTTP in the first, exported to files,
imported into the second from the files and from the first's export stream, then compared through
the API (every list, read and export stream) and as export files. Also: the local run's state file,
stop with SIGTERM and resume, progress lines, `make import`. Every server started here is stopped with
SIGTERM by the fixture."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench import varied
from local.template import ROOT
from tests.verbs import Verbs

BASE = "/genesys/1/cs"
SOURCE = {"ContactCenterId": "source", "GroupId": "g1"}
CS_IMPORT = str(Path(sys.executable).parent / "cs-import")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A local run on a free port, with its own export folder and state folder."""

    def __init__(self, folder: Path, name: str):
        self.port = _free_port()
        self.exports = folder / f"{name}-exports"
        self.state_dir = folder / "local-run"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "AWS_LAMBDA"))}
        for drop in ("ACCESS_MODE", "AUTH", "GRANTS_FILE", "PAGE_TOKEN_SECRET", "TABLE_NAME"):
            env.pop(drop, None)
        env.update(PORT=str(self.port), EXPORT_DIR=str(self.exports), LOCAL_RUN_DIR=str(self.state_dir))
        self.process = subprocess.Popen([sys.executable, "-m", "local.server"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.url = f"http://127.0.0.1:{self.port}{BASE}"
        self.state_file = self.state_dir / f"{self.port}.json"

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if "local run state:" in line:
                break
        else:
            self.stop()
            pytest.fail("the local server did not start:\n" + "".join(self.lines))
        if self.process.poll() is not None:
            pytest.fail("the local server stopped:\n" + "".join(self.lines))
        threading.Thread(target=lambda: [self.lines.append(x) for x in self.process.stdout], daemon=True).start()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


class Reply:
    def __init__(self, status: int, headers: dict[str, str], text: str):
        self.status, self.headers, self.text = status, headers, text

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


class Http(Verbs):
    def __init__(self, server: Server):
        self.server = server

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(response.status, dict(response.headers), response.read().decode())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), error.read().decode())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("import-cli")
    servers = {}
    try:
        servers["a"] = Server(folder, "a")
        servers["b"] = Server(folder, "b")  # both start at once
        for server in servers.values():
            server.wait_until_serving()
        yield folder, servers["a"], servers["b"]
    finally:
        for server in servers.values():
            assert server.stop() == 0, "".join(server.lines[-20:])
            assert not server.state_file.exists(), "the state file goes with the local run"


@pytest.fixture(scope="module")
def source(runs):
    """Varied conversations in the first run, and their export files."""
    folder, a, _ = runs
    client = Http(a)
    ids = varied.create(client, SOURCE, time.sleep)
    return ids, export(client, a, SOURCE)


def export(client: Http, server: Server, headers: dict[str, str]) -> dict[str, bytes]:
    reply = client.post(f"/maintenance/services/files?{varied.WINDOW}&format=json", headers=headers)
    assert reply.status == 200, reply.text
    return {name.rsplit("_", 1)[1]: (server.exports / name).read_bytes() for name in reply.json["created"]}


def cs_import(folder: Path, server: Server, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOCAL_RUN_DIR": str(server.state_dir)}
    return subprocess.run([CS_IMPORT, "--local-port", str(server.port), *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=timeout)


def same_answers(a: Server, b: Server, ids: dict[str, str], target: dict[str, str]) -> None:
    for path in varied.routes(ids):
        left, right = Http(a).get(path, headers=SOURCE), Http(b).get(path, headers=target)
        assert (right.status, right.json) == (left.status, left.json), path


def test_the_local_run_tells_cs_import_where_its_store_is(runs):
    _, a, _ = runs
    state = json.loads(a.state_file.read_text())
    assert state["url"] == a.url and state["pid"] == a.process.pid
    assert state["dynamodb_endpoint"].startswith("http://127.0.0.1:") and state["table"]
    assert any(f"local run state: {a.state_file}" in line for line in a.lines)


def test_files_from_one_local_run_into_another(runs, source):
    folder, a, b = runs
    ids, first = source
    done = cs_import(folder, b, "--files", str(a.exports), "--contact-center", "from-files", "--report", "files.json",
                     "--auto-complete-after", "7200")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((folder / "files.json").read_text())
    assert report["imported"]["conversations"] == len(ids) and report["problems"] == []
    assert f"local run on port {b.port}" in report["target"]
    assert "import: " in done.stderr  # progress as plain lines (not a terminal)
    target = {"ContactCenterId": "from-files"}
    same_answers(a, b, ids, target)
    assert export(Http(b), b, target) == first  # (running it twice: tests/api/test_import.py)


def test_the_export_stream_of_one_local_run_into_another(runs, source):
    folder, a, b = runs
    ids, first = source
    done = cs_import(folder, b, "--url", a.url, "--source-contact-center", "source", "--source-group", "g1",
                     "--contact-center", "from-stream", "--group", "g2", "--page-size", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"imported  {len(ids)} conversations" in done.stdout
    target = {"ContactCenterId": "from-stream", "GroupId": "g2"}
    assert export(Http(b), b, target) == first  # (every route is compared in tests/api/test_import.py)


def test_stopped_with_sigterm_it_resumes_where_it_stopped(runs):
    folder, _, b = runs
    folder = folder / "stop-and-resume"  # its own working directory: its own checkpoints
    varied.write_export(folder / "many", 60)  # 300 items: about 3 s at 100 items a second
    env = {**os.environ, "LOCAL_RUN_DIR": str(b.state_dir)}
    command = [CS_IMPORT, "--local-port", str(b.port), "--files", "many", "--contact-center", "resumed",
               "--rate", "100", "--batch", "10", "--report", "stopped.json"]
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not _committed(folder):  # stopped once it has stored something
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "stopped: interrupted; run the same command again to resume" in out
    stopped = json.loads((folder / "stopped.json").read_text())
    assert 0 < stopped["read"]["conversations"] < 60

    resumed = cs_import(folder, b, "--files", "many", "--contact-center", "resumed", "--batch", "10",
                        "--report", "resumed.json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from" in resumed.stderr
    report = json.loads((folder / "resumed.json").read_text())
    assert report["read"]["conversations"] == 60 and report["imported"]["conversations"] == 60
    listed = Http(b).get("/customers/customer-1/services", headers={"ContactCenterId": "resumed"})
    assert [s["customer_id"] for s in listed.json] == ["customer-1"]


def _committed(folder: Path) -> bool:
    for path in (folder / ".cs-import").glob("checkpoint-*.json"):
        try:
            if json.loads(path.read_text()).get("position"):
                return True
        except ValueError:
            pass
    return False


def test_make_import_and_a_missing_local_run(runs, source):
    folder, a, b = runs
    env = {**os.environ, "LOCAL_RUN_DIR": str(b.state_dir)}
    dry = subprocess.run(["make", "-s", "import", f"ARGS=--files {a.exports} --local-port {b.port} --dry-run "
                          "--contact-center via-make"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run (nothing written)" in dry.stdout and f"would import {len(source[0])} conversations" in dry.stdout
    assert Http(b).get("/customers/cust-1/services", headers={"ContactCenterId": "via-make"}).json == []

    missing = cs_import(folder, b, "--files", str(a.exports), "--local-port", str(_free_port()))
    assert missing.returncode == 2
    assert "no local run on port" in missing.stderr and "make run" in missing.stderr


def test_on_a_terminal_progress_is_a_bar_redrawn_in_place(runs, source):
    import pty

    folder, a, b = runs
    main, terminal = pty.openpty()
    env = {**os.environ, "LOCAL_RUN_DIR": str(b.state_dir)}
    try:
        done = subprocess.run([CS_IMPORT, "--local-port", str(b.port), "--files", str(a.exports), "--dry-run",
                               "--contact-center", "on-a-terminal"], cwd=folder, env=env, stdout=subprocess.PIPE,
                              stderr=terminal, text=True, timeout=300)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
    assert done.returncode == 0, done.stdout
    text = shown.decode()
    total = len(source[0])
    assert f"\r[########################] 100% {total}/{total} conversations, would import {total}" in text
    assert "import: " not in text  # no plain lines on a terminal
