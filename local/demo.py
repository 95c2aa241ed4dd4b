"""Demo data behind Swagger UI's examples (local run only; never deployed).

Swagger UI's "Try it out" pre-fills each operation with the examples of docs/openapi.json; path ids
(service, state, task, job) only work if they exist. So the local server keeps a tenant of its own
for them: the first time the Swagger page asks for the document, it seeds tenant `demo` (header
`ContactCenterId: demo`) through the API itself, then serves the document with the seeded ids as the
examples of the operations' path parameters. Every other tenant, the default one included, stays
as it was: someone testing `make run` without headers never meets this data, and nothing is seeded
for a server nobody opens Swagger UI on.

What the seed holds, so that every pre-filled example succeeds in any order (one example per
operation that consumes what it acts on):
* `journey` (customer `demo-customer`, attached data `preferences`): state 1 active with task 1
  (read, extended, merged, `start_task` attaches to it), state 2 completed, task 2 completed, and
  state 3 / task 3 active for the end examples;
* a completed service of the same customer, an active and a completed anonymous service of contact
  key `demo-contact` (so the six list routes return something);
* one service each for `end_service`, `delete_service`, `associate_service` (anonymous, contact key
  `demo-visitor`) and `transition_state` (state 1 active);
* a maintenance job for `get_job`: a purge of 100 throw-away services started before the rest,
  asked of an environment of the maintenance function with MAINTENANCE_BUDGET_MS=0, so that it
  continues as a job (through the jobs queue, as any job) instead of finishing inside the request.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from local import events

TENANT = "demo"
CUSTOMER = "demo-customer"
CONTACT_KEY = "demo-contact"
VISITOR = "demo-visitor"
EXTENSION = "preferences"
HEADERS = {"ContactCenterId": TENANT, "Content-Type": "application/json"}
BASE = "/genesys/1/cs"
BULK = 100  # one more than a purge step erases (lib/store/erasure.py: ERASURE_BATCH = 99): the purge needs two steps
# The examples every copy of the document carries (local.openapi), by (parameter location, name):
# names, and the first state and task of any service, not server-assigned ids.
PARAMETER_EXAMPLES: dict[tuple[str, str], Any] = {
    ("header", "ContactCenterId"): TENANT, ("path", "customer_id"): CUSTOMER, ("path", "contact_key"): CONTACT_KEY,
    ("path", "ext_name"): EXTENSION, ("path", "state_id"): "1", ("path", "task_id"): "1"}
log = logging.getLogger("local-run")


class SeedError(Exception):
    """A seeding request did not answer what it should."""


@dataclasses.dataclass
class Demo:
    """The seeded ids: the path parameters of every operation that names one."""

    journey: str
    end_service: str
    delete_service: str
    associate_service: str
    transition_state: str
    job_id: str

    def path_examples(self, operation_id: str) -> dict[str, str]:
        """Path parameter examples of an operation (its own service for those that consume one)."""
        own = {"end_service": {"service_id": self.end_service},
               "delete_service": {"service_id": self.delete_service},
               "associate_service": {"service_id": self.associate_service, "customer_id": CUSTOMER},
               "transition_state": {"service_id": self.transition_state},
               "end_state": {"service_id": self.journey, "state_id": "3"},
               "end_task": {"service_id": self.journey, "task_id": "3"},
               "get_job": {"job_id": self.job_id}}
        return {"service_id": self.journey, **own.get(operation_id, {})}


# ---------------------------------------------------------------- calling the API as a client would


def call(api: Any, method: str, path: str, body: Any = None, pool: Any = None) -> tuple[int, Any]:
    """One request of tenant `demo` through the local server's own gateway (no HTTP round trip, no
    request log line): (status, JSON body or None). `pool`: another environment of the function."""
    http = events.HttpRequest.from_target(method, BASE + path, HEADERS.items(),
                                          b"" if body is None else json.dumps(body).encode(),
                                          scheme="http", port=api.port)
    found = events.find_route(api.routes, http.method, http.raw_path)
    if found is None:
        raise SeedError(f"no route {method} {path}")
    route, params = found
    result = (pool or api.pools[route.api.function]).invoke(events.build_event(http, route, params))
    response = events.to_response(result)
    return response.status, (json.loads(response.body) if response.body else None)


def _expect(api: Any, status: int, method: str, path: str, body: Any = None, pool: Any = None) -> Any:
    got, reply = call(api, method, path, body, pool)
    if got != status:
        raise SeedError(f"{method} {path}: {got} {reply} (expected {status})")
    return reply


def _service(api: Any, body: dict[str, Any]) -> str:
    return _expect(api, 201, "POST", "/services/start", body)["service_id"]


# ---------------------------------------------------------------- the seed


def seed(api: Any) -> Demo:
    """Write the demo data (module doc) through the API; the ids of what the examples name. The purge
    (a cold start of its own environment, then one step) runs while the rest is written."""
    purge = _bulk_then_purge(api)
    purge.start()
    try:
        demo = _conversations(api)
    finally:
        purge.join()
    if purge.error is not None:
        raise purge.error
    demo.job_id = purge.job_id
    return demo


def _conversations(api: Any) -> Demo:
    journey = _service(api, {"customer_id": CUSTOMER, "service_type": "billing", "channel": "ivr",
                             EXTENSION: {"language": "en"}})
    states = f"/services/{journey}/states"
    tasks = f"/services/{journey}/tasks"
    _expect(api, 201, "POST", f"{states}/start", {"state_type": "identify", EXTENSION: {"language": "en"}})
    _expect(api, 201, "POST", f"{states}/start", {"state_type": "verify"})
    _expect(api, 204, "POST", f"{states}/2/end", {"disposition": "verified"})
    _expect(api, 201, "POST", f"{states}/start", {"state_type": "survey"})
    _expect(api, 201, "POST", f"{tasks}/start", {"task_type": "lookup", "state_id": 1, EXTENSION: {"language": "en"}})
    _expect(api, 201, "POST", f"{tasks}/start", {"task_type": "notify"})
    _expect(api, 204, "POST", f"{tasks}/2/end", {"disposition": "sent"})
    _expect(api, 201, "POST", f"{tasks}/start", {"task_type": "callback", "state_id": 1})
    for owner in ({"customer_id": CUSTOMER}, {"contact_key": CONTACT_KEY}):
        _service(api, {**owner, "service_type": "inquiry"})
        done = _service(api, {**owner, "service_type": "claims"})
        _expect(api, 204, "POST", f"/services/{done}/end", {"disposition": "resolved"})
    transition = _service(api, {"customer_id": CUSTOMER, "service_type": "billing"})
    _expect(api, 201, "POST", f"/services/{transition}/states/start", {"state_type": "identify"})
    return Demo(journey=journey,
                end_service=_service(api, {"customer_id": CUSTOMER, "service_type": "billing"}),
                delete_service=_service(api, {"customer_id": CUSTOMER, "service_type": "billing"}),
                associate_service=_service(api, {"contact_key": VISITOR, "service_type": "inquiry"}),
                transition_state=transition, job_id="")


class _PurgeJob(threading.Thread):
    """A real maintenance job: a purge of the BULK services, asked of an environment with no budget
    for work inside the request, so that it answers 202 and continues as a job."""

    def __init__(self, api: Any, limit: str):
        super().__init__(name="demo-purge", daemon=True)
        self.api, self.limit = api, limit
        self.job_id = ""
        self.error: Exception | None = None

    def run(self) -> None:
        maintenance = self.api.pools[events.find_route(self.api.routes, "POST", f"{BASE}/maintenance/purge")[0]
                                     .api.function]
        spec = dataclasses.replace(maintenance.spec, environment={**maintenance.spec.environment,
                                                                   "MAINTENANCE_BUDGET_MS": "0"})
        no_budget = type(maintenance)(maintenance.context, spec, 1)
        try:
            self.job_id = _expect(self.api, 202, "POST", "/maintenance/purge",
                                  {"limit": self.limit, "operation": "purge.service.all"}, pool=no_budget)["job_id"]
        except Exception as error:
            self.error = error
        finally:
            no_budget.close()


def _bulk_then_purge(api: Any) -> _PurgeJob:
    """BULK throw-away services, and the purge of everything started before the rest of the seed."""
    for n in range(BULK):
        _service(api, {"contact_key": "demo-bulk", "service_type": f"bulk-{n}"})
    limit = datetime.now(UTC) + timedelta(milliseconds=1)  # after the last bulk start
    time.sleep(0.005)  # and before the first start of the rest
    return _PurgeJob(api, limit.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


# ---------------------------------------------------------------- the served document


_lock = threading.Lock()


def enabled() -> bool:
    """LOCAL_DEMO=0 turns the demo off; AUTH=on, sigv4 or cognito has no caller the seed could act as."""
    off = os.environ.get("LOCAL_DEMO", "1").strip().lower() in ("0", "off", "false", "no")
    return not off and not events.auth_mode() and not events.sigv4_mode()


def served_document(api: Any, document: dict[str, Any]) -> dict[str, Any]:
    """The document Swagger UI gets from the local server: `document` with the seeded ids as the
    examples of path parameters (seeded on the first call; the document as it is when the demo is
    off or could not be seeded)."""
    with _lock:
        if not hasattr(api, "demo"):
            api.demo = None
            if enabled():
                started = time.perf_counter()
                try:
                    api.demo = seed(api)
                    log.info("demo data for Swagger UI's examples: tenant %s (ContactCenterId), seeded in %.1f s",
                             TENANT, time.perf_counter() - started)
                except Exception as error:
                    log.error("demo data for Swagger UI could not be seeded: %s", error)
    return fill(document, api.demo) if api.demo else document


def fill(document: dict[str, Any], demo: Demo) -> dict[str, Any]:
    """A copy of `document` whose path parameters have the demo's ids as examples."""
    filled = copy.deepcopy(document)
    for operations in filled.get("paths", {}).values():
        for operation in operations.values():
            values = demo.path_examples(operation.get("operationId", ""))
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in values:
                    parameter["example"] = values[parameter["name"]]
    return filled
