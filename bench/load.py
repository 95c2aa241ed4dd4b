"""Bounded HTTP load against a local server on loopback: N client threads, each running whole
conversations of mixed operations, one after the other, until its count or the deadline (a
conversation in progress is finished, so none is left half made).

A conversation (9 requests, 8 operations): start a service (customers shared by clients, so that
their lists and index partitions are written by several at once), get it, start a state, start a
task in it, list the customer's services, end the task, transition the state, get the service with
its active states and tasks, end the service. Every answer is checked against the status the
contract gives; anything else (and any connection failure) is an error.

Prints one JSON line: requests, seconds, requests_per_second, p50_ms, p99_ms, errors, and the
same per operation.

    python -m bench.load --url http://127.0.0.1:3000 --clients 32 --conversations 5
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from typing import Any
from urllib.parse import urlsplit

BASE = "/genesys/1/cs"
CUSTOMERS = 8  # customers the clients share


def _percentile(ordered: list[float], share: float) -> float | None:
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 2) if ordered else None


def run(url: str, clients: int, conversations: int, max_seconds: float) -> dict[str, Any]:
    target = urlsplit(url)
    latencies: dict[str, list[float]] = {}
    errors = 0
    samples: list[str] = []  # the first few failures, for the report
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def request(operation: str, method: str, path: str, body: Any, expected: int) -> Any:
        nonlocal errors
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            started = time.perf_counter()
            connection.request(method, BASE + path, body=json.dumps(body) if body is not None else None,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            text = response.read()
            elapsed = (time.perf_counter() - started) * 1000
        except OSError as error:
            with lock:
                errors += 1
                samples.append(f"{operation}: {type(error).__name__}: {error}")
            return None
        finally:
            connection.close()
        with lock:
            latencies.setdefault(operation, []).append(elapsed)
            if response.status != expected:
                errors += 1
                samples.append(f"{operation}: {method} {path} -> {response.status} {text[:200]!r}")
        if response.status != expected:
            return None
        return json.loads(text) if text else {}

    def conversation(index: int, n: int) -> None:
        customer = f"load-customer-{(index + n) % CUSTOMERS}"
        started = request("start_service", "POST", "/services/start",
                          {"customer_id": customer, "service_type": "load", "n": n}, 201)
        if not started:
            return
        base = f"/services/{started['service_id']}"
        request("get_service", "GET", base, None, 200)
        state = request("start_state", "POST", f"{base}/states/start", {"state_type": "first"}, 201)
        task = request("start_task", "POST", f"{base}/tasks/start",
                       {"task_type": "work", **({"state_id": state["state_id"]} if state else {})}, 201)
        request("list_customer_services", "GET", f"/customers/{customer}/services?limit=20", None, 200)
        if task:
            request("end_task", "POST", f"{base}/tasks/{task['task_id']}/end", {}, 204)
        if state:
            request("transition_state", "POST", f"{base}/states/transition",
                    {"from": {"state_id": state["state_id"]}, "to": {"state_type": "second"}}, 201)
        request("get_service_embedded", "GET", f"{base}?active_states=true&active_tasks=true", None, 200)
        request("end_service", "POST", f"{base}/end", {}, 204)

    def client(index: int) -> None:
        for n in range(conversations):
            if time.monotonic() > deadline:
                return
            conversation(index, n)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ordered = sorted(value for values in latencies.values() for value in values)
    return {
        "clients": clients,
        "requests": len(ordered),
        "seconds": round(seconds, 3),
        "requests_per_second": round(len(ordered) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(statistics.median(ordered), 2) if ordered else None,
        "p99_ms": _percentile(ordered, 0.99),
        "errors": errors,
        "error_samples": samples[:5],
        "operations": {name: {"requests": len(values), "p50_ms": round(statistics.median(values), 2),
                              "p99_ms": _percentile(sorted(values), 0.99)}
                       for name, values in sorted(latencies.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--conversations", type=int, default=5, help="conversations per client (9 requests each)")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    print(json.dumps(run(args.url, args.clients, args.conversations, args.max_seconds)))


if __name__ == "__main__":
    main()
