"""The end-to-end suite's target: the local server it starts itself (`make run`'s
`python -m local.server` on a free port, stopped with SIGTERM), or a deployed stage when
CS_BASE_URL is set (e.g. https://abc123.execute-api.eu-west-1.amazonaws.com/Prod/genesys/1/cs),
whose requests are signed with SigV4 from the standard AWS credential chain.

Every run uses its own tenant: a random ContactCenterId, or CS_E2E_CONTACT_CENTER with a random
GroupId (for a caller granted "<ContactCenterId>/*" only); what it creates is deleted at the end.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.template import ROOT
from tests.support import Verbs

BASE_PATH = "/genesys/1/cs"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class Client(Verbs):
    """HTTP client of one base URL (ending in /genesys/1/cs), signing when it targets AWS."""

    base_url: str
    tenant: dict[str, str]
    signer: Any = None
    created: list[tuple[dict[str, str], str]] = field(default_factory=list)

    @property
    def deployed(self) -> bool:
        return self.signer is not None

    def url(self, path: str) -> str:
        """A path relative to the base URL (`/services/1`), or a Link / Location the server sent:
        absolute, or server-relative with or without the stage prefix."""
        if path.startswith(("http://", "https://")):
            return path
        parts = urlsplit(self.base_url)
        origin, prefix = f"{parts.scheme}://{parts.netloc}", parts.path[: parts.path.rindex(BASE_PATH)]
        if path.startswith(BASE_PATH + "/"):
            return origin + prefix + path
        if prefix and path.startswith(prefix + BASE_PATH + "/"):
            return origin + path
        return self.base_url + path

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                raw: bytes | None = None, tenant: dict[str, str] | None = None, sign: bool = True) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = {**(self.tenant if tenant is None else tenant), **(headers or {})}
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        url = self.url(path)
        if self.signer is not None and sign:
            all_headers = self.signer(method, url, all_headers, data)
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(response.status, dict(response.headers.items()), response.read().decode())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers.items()), error.read().decode())

    def start(self, tenant: dict[str, str] | None = None, **body: Any) -> str:
        """Start a service (remembered for clean-up) and return its id."""
        reply = self.post("/services/start", body, tenant=tenant)
        assert reply.status == 201, reply.text
        service_id = reply.json["service_id"]
        self.created.append((self.tenant if tenant is None else tenant, service_id))
        return service_id


def _sigv4_signer(base_url: str):
    """Signs requests with the standard credential chain (env, profile, SSO, instance role...)."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        pytest.exit("CS_BASE_URL is set but no AWS credentials were found", returncode=2)
    host = urlsplit(base_url).hostname or ""
    found = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", host)
    region = os.environ.get("CS_REGION") or (found.group(1) if found else session.get_config_variable("region"))

    def sign(method: str, url: str, headers: dict[str, str], data: bytes | None) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
        return dict(request.headers.items())

    return sign


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_local_server(**extra_env: str) -> tuple[str, Any]:
    """`make run`'s server on a free port: (base URL, stop function). Stopped with SIGTERM."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "AWS_LAMBDA"))}
    for name in ("ACCESS_MODE", "AUTH", "GRANTS_FILE", "PAGE_TOKEN_SECRET"):
        env.pop(name, None)
    env.update(PORT=str(port), HOST="127.0.0.1", TABLE_NAME="context-services-e2e", **extra_env)
    process = subprocess.Popen([sys.executable, "-m", "local.server"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Context Services API on" in line:
            break
    else:
        process.kill()
        pytest.fail("the local server did not start:\n" + "".join(lines))
    if process.poll() is not None:
        pytest.fail("the local server stopped:\n" + "".join(lines))
    threading.Thread(target=lambda: [lines.append(x) for x in process.stdout], daemon=True).start()

    def stop() -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    return f"http://127.0.0.1:{port}{BASE_PATH}", stop


@pytest.fixture(scope="session")
def base_url():
    """The deployed stage of CS_BASE_URL, or a local server started for the session."""
    if os.environ.get("CS_BASE_URL"):
        yield os.environ["CS_BASE_URL"].rstrip("/"), _sigv4_signer(os.environ["CS_BASE_URL"])
        return
    url, stop = start_local_server()
    yield url, None
    stop()


@pytest.fixture(scope="session")
def cs(base_url):
    """The client, in this run's own tenant; deletes every service it started when the run ends."""
    url, signer = base_url
    fixed = os.environ.get("CS_E2E_CONTACT_CENTER")
    tenant = ({"ContactCenterId": fixed, "GroupId": f"e2e-{secrets.token_hex(4)}"} if fixed
              else {"ContactCenterId": f"e2e-{secrets.token_hex(6)}"})
    client = Client(url, tenant, signer)
    yield client
    for tenant_headers, service_id in client.created:
        reply = client.delete(f"/services/{service_id}", tenant=tenant_headers)
        assert reply.status in (204, 404), reply.text


@pytest.fixture
def other_tenant(cs) -> dict[str, str]:
    """A second (tenant, group) pair of this run: another group of its ContactCenterId."""
    return {"ContactCenterId": cs.tenant["ContactCenterId"], "GroupId": f"e2e-other-{secrets.token_hex(3)}"}
