"""Bounded HTTP load against a local server on loopback: a start / get / end mix from N client
threads. Prints one JSON line: requests, seconds, requests_per_second, p50_ms, p99_ms, errors.
Run: python -m bench.load --url http://127.0.0.1:3000 --clients 8 --conversations 50"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlsplit

BASE = "/genesys/1/cs"


def run(url: str, clients: int, conversations: int, max_seconds: float) -> dict:
    target = urlsplit(url)
    latencies: list[float] = []
    errors = 0
    samples: list[str] = []  # the first few failures, for the report
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def request(connection: http.client.HTTPConnection, method: str, path: str, body: dict | None) -> tuple[int, dict]:
        started = time.perf_counter()
        connection.request(method, BASE + path, body=json.dumps(body) if body is not None else None,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append(elapsed)
        return response.status, (json.loads(text) if text else {})

    def client(index: int) -> None:
        nonlocal errors
        for n in range(conversations):
            if time.monotonic() > deadline:
                return
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            try:
                status, body = request(connection, "POST", "/services/start", {"customer_id": f"load-{index}", "n": n})
                connection.close()
                steps = [("GET", f"/services/{body.get('service_id')}", None, 200),
                         ("POST", f"/services/{body.get('service_id')}/end", {}, 204)]
                failures = [] if status == 201 else [f"POST /services/start -> {status}"]
                for method, path, payload, expected in steps:
                    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                    code, reply = request(connection, method, path, payload)
                    connection.close()
                    if code != expected:
                        failures.append(f"{method} {path} -> {code} {reply}")
                if failures:
                    with lock:
                        errors += 1
                        samples.extend(failures[:1])
            except OSError as error:
                with lock:
                    errors += 1
                    samples.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(ordered),
        "seconds": round(seconds, 3),
        "requests_per_second": round(len(ordered) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(statistics.median(ordered), 2) if ordered else None,
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2) if ordered else None,
        "errors": errors,
        "error_samples": samples[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--conversations", type=int, default=30, help="start/get/end cycles per client")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    print(json.dumps(run(args.url, args.clients, args.conversations, args.max_seconds)))


if __name__ == "__main__":
    main()
