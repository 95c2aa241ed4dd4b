"""The change feed, measured locally (docs/BENCHMARKS.md, Change feed): `measure(quick)` ->

* `events_per_second`: what the publisher sustains on one shard. Records of service writes (two
  events each, as a start with its first state writes them) are put into a table created from
  template.yaml on moto, then one shard consumer (local.stream.ShardConsumer: Lambda's event source
  mapping, batches of the template's BatchSize) delivers them to the publisher (lib.feed.publisher),
  which publishes to moto's EventBridge with one rule to an SQS queue (every event is checked to
  have arrived there). Timed: the function's invocations, one after another as one shard's are (what
  Lambda bills; reading the stream is the event source mapping's own work, and moto's slowest part).
  moto's bus with its JSONPath parsing memoized, as the local run uses it (local.stream); the
  figure is moto's bus plus the publisher's code, not EventBridge's latency (~tens of ms a call).
* `delay_ms` (`p50`, `p99`): from commit to the embedded bus, in the local run. `python -m
  local.server` (what `make run` starts) runs the template's PublisherFunction on its stream; a
  service item is written to its embedded DynamoDB (the commit: PutItem's reply), one at a time at
  random moments, and the time is taken when its event arrives at a `GET /local/events` client. It
  includes what a deployed feed has too: the idle shard's polling (4 times a second, as Lambda
  polls), the invocation, PutEvents; and what only the local run has: its watcher's read of the
  bus's queue (every 50 ms) and the SSE push.

Each part runs in its own process (moto's state and the environment stay out of the caller's).

    python -m bench.feed [--quick]        # prints the figures as JSON
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS_PER_RECORD = 2


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_ENDPOINT_URL", "AWS_LAMBDA", "POWERTOOLS_", "_X_AMZN"))
           and k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "TABLE_NAME", "ACCESS_MODE", "AUTH")}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_TRACE_DISABLED="true",
               AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled", **extra)
    return env


def _image(service_id: str, events: int) -> dict[str, Any]:
    from lib.store.codec import encode_item

    started = {"timestamp": "2026-01-01T00:00:00.000Z", "channel": "ivr"}
    ev = [{"name": "ServiceStarted", "at": 1_767_225_600_000, "data": {
        "service_type": "billing", "est_duration": None, "started": started, "expiration_time": "2031-01-01T00:00:00.000Z",
        "auto_complete_after": None, "attached_keys": ["channel"]}}]
    ev += [{"name": "StateStarted", "at": 1_767_225_600_000, "data": {
        "state_id": k, "state_type": "identify", "previous_state_id": None, "est_duration": None, "started": started,
        "attached_keys": []}} for k in range(1, events)]
    return encode_item({"PK": f"acme|#C#{service_id}", "SK": "#SERVICE", "type": "service", "tenant": "acme|",
                        "service_id": service_id, "customer_id": f"c-{service_id}", "expires_ms": 1_924_992_000_000,
                        "seq": events, "ev": ev})


# ---------------------------------------------------------------- throughput on one shard (child process)


def publisher_throughput(records: int) -> dict[str, Any]:
    """See the module doc. Runs inside a moto mock of its own."""
    import boto3
    from botocore.config import Config
    from moto import mock_aws

    from lib.feed import bus, publisher
    from local import embedded_dynamodb, template
    from local.stream import Mapping, ShardConsumer, memoized_input_paths

    embedded_dynamodb.faithful_updates()
    embedded_dynamodb.partition_scoped()
    memoized_input_paths()
    with mock_aws():
        config = Config(account_id_endpoint_mode="disabled")
        dynamodb, streams = boto3.client("dynamodb", config=config), boto3.client("dynamodbstreams", config=config)
        events, sqs = boto3.client("events", config=config), boto3.client("sqs", config=config)
        template.create_table(dynamodb, "bench-feed")
        events.create_event_bus(Name="bench-feed")
        queue = sqs.create_queue(QueueName="bench-feed-consumer")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="consumer", EventBusName="bench-feed", EventPattern=json.dumps({"source": ["context-services"]}))
        events.put_targets(Rule="consumer", EventBusName="bench-feed", Targets=[{"Id": "1", "Arn": arn}])
        for n in range(records):
            dynamodb.put_item(TableName="bench-feed", Item=_image(str(10_000 + n), EVENTS_PER_RECORD))
        stream_arn = dynamodb.describe_table(TableName="bench-feed")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        props = template.load()["Resources"]["PublisherStreamMapping"]["Properties"]
        mapping = Mapping(batch_size=int(props["BatchSize"]), report_failures=True)
        destination = bus.Destination("bench-feed", "context-services")

        class Context:
            def get_remaining_time_in_millis(self) -> int:
                return 60_000

        failures: list[dict[str, Any]] = []
        inside = [0.0]
        delivered = [0]

        batches: list[dict[str, Any]] = []

        def invoke(event: dict[str, Any]) -> Any:
            batches.append(event)
            started = time.perf_counter()
            try:
                return publisher.handle(event, Context(), destination, events)
            finally:
                inside[0] += time.perf_counter() - started
                consume()  # untimed: a consumer keeps up (moto's SQS slows down as its queue grows)

        def consume() -> None:
            while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
                delivered[0] += len(messages)
                sqs.delete_message_batch(QueueUrl=queue, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])

        consumer = ShardConsumer(streams, stream_arn, shard, invoke, mapping, failures.append,
                                 "arn:aws:lambda:us-east-1:123456789012:function:bench")
        started = time.perf_counter()
        consumer.drain()
        wall = time.perf_counter() - started
        elapsed = inside[0]
        # The same batches again, to a bus that accepts everything at once: the publisher's own code.
        accepted = {"FailedEntryCount": 0, "Entries": [{"EventId": "x"}] * bus.MAX_ENTRIES}

        class Instant:
            def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
                return {**accepted, "Entries": accepted["Entries"][:len(Entries)]}

        started = time.perf_counter()
        for event in batches:
            publisher.handle(event, Context(), destination, Instant())
        own = time.perf_counter() - started
    total = records * EVENTS_PER_RECORD
    if failures or delivered[0] != total:
        raise RuntimeError(f"the publisher lost events: {delivered[0]} of {total} delivered, {len(failures)} given up")
    return {"events_per_second": round(total / elapsed, 1), "records_per_second": round(records / elapsed, 1),
            "events": total, "records": records, "batch_size": mapping.batch_size, "invocations": consumer.invocations,
            "function_seconds": round(elapsed, 3), "with_stream_reads_seconds": round(wall, 3),
            "publisher_code_events_per_second": round(total / own, 1)}


# ---------------------------------------------------------------- delay in the local run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def commit_to_bus_delay(samples: int) -> dict[str, Any]:
    """See the module doc: a local server, `samples` writes one at a time, their events' arrival."""
    import boto3

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "local.server"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=_environment(PORT=str(port), TABLE_NAME="bench-feed-delay", LOCAL_POOL_SIZE="1"))
    lines: list[str] = []
    arrived: dict[str, float] = {}
    arrival = threading.Condition()
    connection = None
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            line = server.stdout.readline()
            lines.append(line)
            if not line or "Context Services API on" in line:
                break
        if "Context Services API on" not in lines[-1]:
            raise RuntimeError("the local server did not start:\n" + "".join(lines))
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        endpoint = re.search(r"embedded DynamoDB .*? on (http://\S+)", "".join(lines)).group(1)
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                                aws_access_key_id="local", aws_secret_access_key="local")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/local/events")
        sock = connection.sock
        response = connection.getresponse()

        def watch() -> None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                for raw in response:
                    if raw.startswith(b"data: "):
                        now = time.perf_counter()
                        service_id = json.loads(raw[6:])["detail"]["service_id"]
                        with arrival:
                            arrived.setdefault(service_id, now)
                            arrival.notify_all()

        threading.Thread(target=watch, daemon=True).start()
        rng = random.Random(17)
        delays = []
        for n in range(samples + 1):
            service_id = str(20_000 + n)
            dynamodb.put_item(TableName="bench-feed-delay", Item=_image(service_id, 1))
            committed = time.perf_counter()
            with arrival:
                if not arrival.wait_for(lambda: service_id in arrived, timeout=10):
                    raise RuntimeError(f"the event of service {service_id} did not arrive in 10 s")
            if n:  # the first one warms the path
                delays.append((arrived[service_id] - committed) * 1000)
            time.sleep(rng.uniform(0, 0.3))  # a moment anywhere in the idle shard's polling cycle
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return {"p50": round(statistics.median(delays), 1), "p99": round(cuts[98], 1), "samples": len(delays),
            "max": round(max(delays), 1)}


# ---------------------------------------------------------------- the figures


def measure(quick: bool) -> dict[str, Any]:
    """The feed's figures: {"events_per_second", "delay_ms": {"p50", "p99", ...}, "throughput": {...}}."""
    records = 100 if quick else 2_500
    samples = 10 if quick else 200
    child = subprocess.run([sys.executable, "-m", "bench.feed", "publisher", "--records", str(records)], cwd=ROOT,
                           env=_environment(), capture_output=True, text=True, timeout=1800)
    if child.returncode != 0:
        raise RuntimeError(f"bench.feed publisher failed:\n{child.stdout[-2000:]}\n{child.stderr[-4000:]}")
    throughput = json.loads(child.stdout.strip().splitlines()[-1])
    delay = commit_to_bus_delay(samples)
    return {"events_per_second": throughput["events_per_second"], "delay_ms": delay, "throughput": throughput}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The change feed's figures (see the module doc).")
    parser.add_argument("part", nargs="?", choices=["publisher"], help="(internal) one part, in this process")
    parser.add_argument("--records", type=int, default=2_500)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.part == "publisher":
        os.environ.update(_environment())
        print(json.dumps(publisher_throughput(args.records)))
        return
    print(json.dumps(measure(args.quick), indent=2))


if __name__ == "__main__":
    main()
