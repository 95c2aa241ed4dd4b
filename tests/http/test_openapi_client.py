"""The OpenAPI document tells the truth (issue 7 point 8): a client generated from docs/openapi.json
with openapi-python-client runs the README walkthrough against the local server, and the document's
schema names are ones a generator keeps.

The walkthrough builds each body with the generated model of the operation's `body` parameter
(`Model.from_dict`) and reads each answer through the generated model of its response, so it depends
on the operation ids (which the events/ files share) and not on how the schemas are named."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.template import ROOT

DOCUMENT = ROOT / "docs" / "openapi.json"
PACKAGE = "cs_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Any:
    folder = tmp_path_factory.mktemp("client")
    config = folder / "config.yaml"
    config.write_text(f"post_hooks: []\nproject_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\n")
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run([str(generator), "generate", "--path", str(DOCUMENT), "--config", str(config),
                             "--meta", "none", "--output-path", str(folder / PACKAGE)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Warning" not in result.stdout and "Error" not in result.stdout, result.stdout[-3000:]
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _tags() -> dict[str, str]:
    document = json.loads(DOCUMENT.read_text())
    return {operation["operationId"]: operation["tags"][0] for methods in document["paths"].values()
            for operation in methods.values() if isinstance(operation, dict) and "operationId" in operation}


TAGS = _tags()


class Operations:
    """The generated operations, called with plain values: `ops.start_service(body={...})`."""

    def __init__(self, package: Any, base_url: str):
        self.package = package
        self.client = package.Client(base_url=base_url, raise_on_unexpected_status=True, timeout=30)

    def __getattr__(self, operation_id: str):
        # The generator puts each operation under its tag (the resource group: services, states, ...).
        tag = TAGS[operation_id]
        module = importlib.import_module(f"{self.package.__name__}.api.{tag}.{operation_id}")

        def run(*args: Any, body: Any = None, **kwargs: Any):
            if body is not None:
                model = inspect.signature(module.sync_detailed).parameters["body"].annotation
                kwargs["body"] = model.from_dict(body) if hasattr(model, "from_dict") else body
            return module.sync_detailed(*args, client=self.client, **kwargs)

        return run


def plain(parsed: Any) -> Any:
    if isinstance(parsed, list):
        return [plain(p) for p in parsed]
    return parsed.to_dict() if hasattr(parsed, "to_dict") else parsed


def test_the_readme_walkthrough_with_a_generated_client(generated, server):
    ops = Operations(generated, server["url"] + "/genesys/1/cs")

    started = ops.start_service(body={"customer_id": "c-42", "service_type": "billing", "channel": "ivr"})
    assert started.status_code == 201, started.content
    sid = plain(started.parsed)["service_id"]
    assert started.headers["Location"] == f"/genesys/1/cs/services/{sid}"

    state = ops.start_state(sid, body={"state_type": "identify"})
    assert state.status_code == 201 and plain(state.parsed) == {"state_id": 1}, state.content
    task = ops.start_task(sid, body={"task_type": "lookup", "state_id": 1})
    assert task.status_code == 201 and plain(task.parsed) == {"task_id": 1}, task.content
    moved = ops.transition_state(sid, body={"from": {"state_id": 1, "disposition": "ok"}, "to": {"state_type": "pay"}})
    assert moved.status_code == 201 and plain(moved.parsed) == {"state_id": 2}, moved.content

    view = ops.get_service(sid, active_states=True, completed_states=True, completed_tasks=True, extensions="*")
    assert view.status_code == 200, view.content
    service = plain(view.parsed)
    assert service["service_id"] == sid and service["customer_id"] == "c-42" and service["channel"] == "ivr"
    assert [s["state_id"] for s in service["active_states"]] == [2]
    assert [s["state_id"] for s in service["completed_states"]] == [1]
    assert [t["task_id"] for t in service["completed_tasks"]] == [1]

    listed = ops.list_customer_services_active("c-42")
    assert listed.status_code == 200 and [s["service_id"] for s in plain(listed.parsed)] == [sid], listed.content

    ended = ops.end_service(sid, body={"disposition": "paid"})
    assert ended.status_code == 204 and ended.content == b"", ended.content
    assert plain(ops.get_service(sid).parsed)["disposition"] == "paid"

    retimed = ops.put_service(sid, body={"ttl": 86400})
    assert retimed.status_code == 200 and plain(retimed.parsed)["service_id"] == sid, retimed.content

    composite = ops.start_composite(body={"services": [{"service": {"customer_id": "c-42", "service_type": "care"},
                                                        "state": {"state_type": "queue"}}]})
    assert composite.status_code == 200, composite.content
    (element,) = plain(composite.parsed)["services"]
    assert element["service_created"] is True and element["state_id"] == 1

    deleted = ops.delete_service(sid)
    assert deleted.status_code == 204 and deleted.content == b"", deleted.content
    gone = ops.get_service(sid)
    assert gone.status_code == 404 and plain(gone.parsed)["exception"] == "NotFoundException", gone.content


def test_generated_client_follows_the_link_of_a_page(generated, server):
    ops = Operations(generated, server["url"] + "/genesys/1/cs")
    for _ in range(3):
        assert ops.start_service(body={"customer_id": "pages"}).status_code == 201
    page = ops.list_customer_services_all("pages", limit=2)
    assert page.status_code == 200 and len(plain(page.parsed)) == 2
    link = re.fullmatch(r'</genesys/1/cs/customers/pages/services\?([^>]+)>; rel="next"', page.headers["Link"])
    assert link, page.headers["Link"]
    token = dict(part.split("=", 1) for part in link.group(1).split("&"))["page_token"]
    rest = ops.list_customer_services_all("pages", limit=2, page_token=token)
    assert rest.status_code == 200 and len(plain(rest.parsed)) == 1 and "Link" not in rest.headers


def test_generated_client_reads_the_documented_errors(generated, server):
    ops = Operations(generated, server["url"] + "/genesys/1/cs")
    bad = ops.start_service(body={"service_type": "no owner"})
    assert bad.status_code == 400 and plain(bad.parsed)["exception"] == "ValidationException", bad.content
    first = ops.start_service(body={"customer_id": "idem"}, idempotency_key="walk-1")
    assert first.status_code == 201
    # The same Idempotency-Key with another body: a 409 the document must list (else the client raises).
    conflict = ops.start_service(body={"customer_id": "other"}, idempotency_key="walk-1")
    assert conflict.status_code == 409 and plain(conflict.parsed)["exception"] == "ConflictException", conflict.content
    sid = plain(first.parsed)["service_id"]
    assert ops.end_service(sid, body={}).status_code == 204
    again = ops.end_service(sid, body={})
    assert again.status_code == 409 and plain(again.parsed)["exception"] == "ConflictException", again.content
