"""The change feed in the local run (`make run`): the table's stream, Lambda's DynamoDB event source
mapping, the embedded EventBridge bus and a way to watch it. Never deployed.

* Stream: the embedded DynamoDB serves its stream on its own endpoint (local.embedded_dynamodb; a
  DynamoDB Local does the same). Each shard is read by a `ShardConsumer`, which delivers batches to
  the function the template's mapping names, as Lambda's event source mapping does: in order,
  BatchSize records at most (and 6 MB), the next batch only once the previous one is done; a
  function error retries the batch (halved with BisectBatchOnFunctionError); a ReportBatchItemFailures
  answer checkpoints before the lowest failed sequence number and retries from there; past
  MaximumRetryAttempts or MaximumRecordAgeInSeconds the batch is described to the OnFailure queue
  (the same message Lambda sends: DDBStreamBatchInfo) and skipped. Idle shards are polled 4 times a
  second, as Lambda polls them (LOCAL_STREAM_POLL_SECONDS). ParallelizationFactor is not emulated:
  one batch at a time per shard (per-item order is the same either way).
* Bus: moto's EventBridge on a loopback port (the functions reach it through AWS_ENDPOINT_URL_EVENTBRIDGE),
  with the template's buses; a rule sends every event of them to an internal SQS queue that a
  thread drains: each event is logged as one line and kept for `GET /local/events`.
* `GET /local/events` (this server only, never the deployed API): Server-Sent Events, one event per
  `data:` line holding the bus entry as JSON (`source`, `detail-type`, `detail`, ...): every event
  published since the server started, then new ones as they come.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from werkzeug.wrappers import Request, Response

from lib.feed.redrive import delivered_record
from local import template

log = logging.getLogger("local-run")
POLL_SECONDS = float(os.environ.get("LOCAL_STREAM_POLL_SECONDS", "0.25"))
WATCH_SECONDS = 0.05  # how often the internal queue of the bus is read when it was empty
MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous invocation payload
EVENTS_PATH = "/local/events"
WATCH_QUEUE = "local-feed-watch"


# ---------------------------------------------------------------- Lambda's DynamoDB event source


@dataclass(frozen=True)
class Mapping:
    """The settings of an event source mapping that the emulation honours (Lambda's defaults)."""

    batch_size: int = 100
    report_failures: bool = False
    bisect: bool = False
    max_retries: int = -1  # -1: until the record expires
    max_record_age: int = -1
    starting_position: str = "TRIM_HORIZON"

    @classmethod
    def from_properties(cls, props: dict[str, Any], resolve: Callable[[Any], str]) -> Mapping:
        def number(name: str, default: int) -> int:
            return int(resolve(props[name])) if name in props else default

        return cls(number("BatchSize", 100), "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                   str(props.get("BisectBatchOnFunctionError", False)).lower() == "true",
                   number("MaximumRetryAttempts", -1), number("MaximumRecordAgeInSeconds", -1),
                   str(props.get("StartingPosition", "TRIM_HORIZON")))


def _arrival(record: dict[str, Any]) -> float:
    moment = record["dynamodb"].get("ApproximateCreationDateTime")
    return float(moment) if isinstance(moment, (int, float)) else time.time()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ShardConsumer:
    """Lambda's event source mapping for one shard of a stream (see the module doc). `invoke(event)`
    returns the function's result or raises (a function error: crash or timeout); `on_failure(message)`
    receives the description of a batch given up on."""

    def __init__(self, streams: Any, stream_arn: str, shard_id: str, invoke: Callable[[dict[str, Any]], Any],
                 mapping: Mapping, on_failure: Callable[[dict[str, Any]], None], function_arn: str,
                 region: str = "us-east-1", label: str = "stream", sleep: Callable[[float], None] = time.sleep):
        self.streams, self.stream_arn, self.shard_id = streams, stream_arn, shard_id
        self.invoke, self.mapping, self.on_failure = invoke, mapping, on_failure
        self.function_arn, self.region, self.label, self.sleep = function_arn, region, label, sleep
        self.iterator: str | None = None
        self.closed = False  # the shard has ended and every record of it is done
        self.buffer: list[dict[str, Any]] = []  # records read, not yet done, in order
        self.attempts = 0  # invocations of the batch that starts with buffer[0]
        self.size = mapping.batch_size  # halved by bisection, back to the batch size after a success
        self.invocations = 0
        self.given_up: list[dict[str, Any]] = []

    def _read(self) -> None:
        if self.iterator is None and not self.closed:
            self.iterator = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=self.shard_id,
                ShardIteratorType=self.mapping.starting_position)["ShardIterator"]
        while self.iterator is not None and len(self.buffer) < self.mapping.batch_size:
            page = self.streams.get_records(ShardIterator=self.iterator, Limit=self.mapping.batch_size - len(self.buffer))
            self.iterator = page.get("NextShardIterator")
            records = [delivered_record(r, self.stream_arn, self.region) for r in page.get("Records", [])]
            self.buffer.extend(records)
            if not records:
                break
        if self.iterator is None and not self.buffer:
            self.closed = True

    def _batch(self) -> list[dict[str, Any]]:
        batch, size = [], 0
        for record in self.buffer[:self.size]:
            length = len(json.dumps(record, default=str))
            if batch and size + length > MAX_PAYLOAD:
                break
            batch.append(record)
            size += length
        return batch

    def step(self) -> bool:
        """Read, then deliver one batch (or one retry of it); False when there was nothing to deliver."""
        self._read()
        if not self.buffer:
            return False
        batch = self._batch()
        if self._expired(batch):
            self._give_up(batch, "RecordAgeExceeded")
            return True
        self.invocations += 1
        try:
            result = self.invoke({"Records": batch})
        except Exception as error:
            log.error("%s: batch of %d record(s) failed (function error), retried: %s", self.label, len(batch),
                      str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__)
            self._failed(batch, bisect=self.mapping.bisect and len(batch) > 1)
            return True
        failed = self._reported(batch, result)
        if failed is None:
            self._done(len(batch))
        elif failed > 0:
            self._done(failed)  # checkpoint before the first failed record; retry from it
            self.attempts = 1
            self._retry_pause()
        else:
            self._failed(batch, bisect=False)
        return True

    def drain(self, limit: int = 10_000) -> None:
        """Deliver until the shard has nothing left to deliver (tests, benchmark)."""
        for _ in range(limit):
            if not self.step():
                return
        raise RuntimeError(f"{self.label}: still delivering after {limit} steps")

    def run(self, stopping: threading.Event) -> None:
        """Until `stopping`, or until the shard has ended and everything of it is done."""
        while not stopping.is_set() and not self.closed:
            try:
                busy = self.step()
            except Exception:
                if stopping.is_set():
                    return
                log.exception("%s: reading the stream failed", self.label)
                busy = False
            if not busy:
                stopping.wait(POLL_SECONDS)

    # -- outcomes

    def _reported(self, batch: list[dict[str, Any]], result: Any) -> int | None:
        """None: the batch is done; n > 0: the first n records are done, retry from the next one;
        0: the whole batch failed. As Lambda reads a ReportBatchItemFailures answer."""
        if not self.mapping.report_failures or not isinstance(result, dict):
            return None
        failures = result.get("batchItemFailures") or []
        if not failures:
            return None
        positions = {record["dynamodb"]["SequenceNumber"]: i for i, record in enumerate(batch)}
        found = [positions.get(str(item.get("itemIdentifier") or "")) for item in failures if isinstance(item, dict)]
        if not found or any(position is None for position in found):
            return 0  # an identifier that names no record of the batch: the whole batch failed
        return min(found)

    def _done(self, count: int) -> None:
        del self.buffer[:count]
        self.attempts = 0
        self.size = self.mapping.batch_size

    def _failed(self, batch: list[dict[str, Any]], bisect: bool) -> None:
        self.attempts += 1
        if 0 <= self.mapping.max_retries < self.attempts:
            self._give_up(batch, "RetryAttemptsExhausted")
            return
        if bisect:
            self.size = max(1, len(batch) // 2)
        self._retry_pause()

    def _retry_pause(self) -> None:
        self.sleep(min(1.0, 0.05 * 2 ** min(self.attempts, 5)))

    def _expired(self, batch: list[dict[str, Any]]) -> bool:
        age = self.mapping.max_record_age
        return age >= 0 and time.time() - _arrival(batch[0]) > age

    def _give_up(self, batch: list[dict[str, Any]], condition: str) -> None:
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
        message = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": self.function_arn,
                               "condition": condition, "approximateInvokeCount": self.attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "DDBStreamBatchInfo": {
                "shardId": self.shard_id, "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(_arrival(batch[0])),
                "approximateArrivalOfLastRecord": _iso(_arrival(batch[-1])),
                "batchSize": len(batch), "streamArn": self.stream_arn,
            },
        }
        log.error("%s: gave up on %d record(s) (%s), described in the on-failure destination", self.label,
                  len(batch), condition)
        self.given_up.append(message)
        self.on_failure(message)
        self._done(len(batch))


# ---------------------------------------------------------------- the local run's feed


def memoized_input_paths() -> None:
    """moto's EventBridge builds a JSONPath parser (yacc) for each of the eight paths of its default
    input template, for every event and target it delivers: ~35 ms an event, more than everything
    else on the feed's path together. The paths never change: parse each one once."""
    import jsonpath_ng.ext

    if getattr(jsonpath_ng.ext.parse, "memoized", False):
        return
    memoized = lru_cache(maxsize=64)(jsonpath_ng.ext.parse)  # moto imports `parse` from here at each call
    memoized.memoized = True  # type: ignore[attr-defined]
    jsonpath_ng.ext.parse = memoized


def stream_mappings(path: Any = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(function, table, properties) of every event source mapping of a table's stream in the template:
    AWS::Lambda::EventSourceMapping resources and SAM `DynamoDB` events."""
    loaded = template.load(path)
    resources = loaded["Resources"]

    def table_of(arn: Any) -> str | None:
        if isinstance(arn, dict) and "Fn::GetAtt" in arn:
            name, attribute = arn["Fn::GetAtt"]
            if attribute == "StreamArn" and resources.get(name, {}).get("Type") == "AWS::DynamoDB::Table":
                return name
        return None

    found = []
    for name, resource in resources.items():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Lambda::EventSourceMapping" and table_of(props.get("EventSourceArn")):
            target = props.get("FunctionName")
            function = (str(target["Ref"]).split(".", 1)[0] if isinstance(target, dict) and "Ref" in target
                        else target["Fn::GetAtt"][0] if isinstance(target, dict) and "Fn::GetAtt" in target else None)
            if function:
                found.append((function, table_of(props["EventSourceArn"]), props))
        elif resource["Type"] == "AWS::Serverless::Function":
            for event in (props.get("Events") or {}).values():
                if event.get("Type") == "DynamoDB" and table_of((event.get("Properties") or {}).get("Stream")):
                    found.append((name, table_of(event["Properties"]["Stream"]), event["Properties"]))
    return found


def wanted(path: Any = None) -> bool:
    """Whether the template has a bus or a stream mapping for the local run to emulate."""
    return bool(template.resources("AWS::Events::EventBus", path) or stream_mappings(path))


class LocalFeed:
    """The embedded bus, its watcher, the stream consumers and `GET /local/events` (module doc)."""

    def __init__(self, host: str, region: str, stopping: threading.Event):
        self.host, self.region, self.stopping = host, region, stopping
        self.servers: list[Any] = []
        self.threads: list[threading.Thread] = []
        self.published: list[dict[str, Any]] = []  # every event the bus delivered, in order
        self.condition = threading.Condition()

    def _client(self, service: str, endpoint: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(service, region_name=self.region, endpoint_url=endpoint,
                            config=Config(account_id_endpoint_mode="disabled"))

    def _serve(self, backend: str) -> str:
        from moto.server import create_backend_app
        from werkzeug.serving import make_server

        from local.embedded_dynamodb import SerializedApp

        server = make_server(self.host, 0, SerializedApp(create_backend_app(backend)), threaded=True)
        threading.Thread(target=server.serve_forever, name=f"embedded-{backend}", daemon=True).start()
        self.servers.append(server)
        return f"http://{self.host}:{server.server_port}"

    # -- before the functions start: the bus they publish to

    def start_bus(self, path: Any, refs: dict[str, str], attributes: dict[tuple[str, str], str]) -> None:
        """moto's EventBridge with the template's buses (their names and ARNs resolved for the
        functions' environment), and the internal queue every event of them goes to."""
        memoized_input_paths()
        endpoint = self._serve("events")
        os.environ["AWS_ENDPOINT_URL_EVENTBRIDGE"] = endpoint  # inherited by the function workers
        events = self._client("events", endpoint)
        watch = self._client("sqs", self._serve("sqs"))
        queue = watch.create_queue(QueueName=WATCH_QUEUE)["QueueUrl"]
        queue_arn = watch.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        print(f"embedded EventBridge (moto) on {endpoint}", flush=True)
        for name, resource in template.resources("AWS::Events::EventBus", path).items():
            props = resource.get("Properties") or {}
            bus = template.resolve(props["Name"], refs, attributes) if "Name" in props else name
            arn = events.create_event_bus(Name=bus)["EventBusArn"]
            refs[name] = bus
            attributes.update({(name, "Arn"): arn, (name, "Name"): bus})
            events.put_rule(Name=f"{WATCH_QUEUE}-{bus}"[:64], EventBusName=bus,
                            EventPattern=json.dumps({"source": [{"prefix": ""}]}))
            events.put_targets(Rule=f"{WATCH_QUEUE}-{bus}"[:64], EventBusName=bus,
                               Targets=[{"Id": "watch", "Arn": queue_arn}])
            print(f"bus {name}: {bus} - every event is logged and served at {EVENTS_PATH}", flush=True)
        thread = threading.Thread(target=self._watch, args=(watch, queue), name="feed-watch", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _watch(self, sqs: Any, queue: str) -> None:
        while not self.stopping.is_set():
            try:
                messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            except Exception:
                if not self.stopping.is_set():
                    log.exception("reading the bus's events failed")
                messages = []
            if not messages:
                self.stopping.wait(WATCH_SECONDS)
                continue
            entries = [json.loads(message["Body"]) for message in messages]
            for entry in entries:
                log.info("event %s %s", entry.get("detail-type"), json.dumps(entry.get("detail"), separators=(",", ":")))
            with self.condition:
                self.published.extend(entries)
                self.condition.notify_all()
            sqs.delete_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])

    # -- once the functions run: the stream consumers

    def start_consumers(self, path: Any, pools: dict[str, Any], refs: dict[str, str],
                        attributes: dict[tuple[str, str], str], account: str) -> None:
        """A consumer per shard of every stream the template maps to a function."""
        for function, table, props in stream_mappings(path):
            if str(props.get("Enabled", True)).lower() == "false" or function not in pools:
                continue
            dynamodb = self._client("dynamodb", os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
            stream_arn = dynamodb.describe_table(TableName=refs[table])["Table"].get("LatestStreamArn")
            label = f"DynamoDB stream of {table} -> {function}"
            if not stream_arn:
                print(f"{label}: the table has no stream (created before the template had one?): not emulated",
                      flush=True)
                continue
            mapping = Mapping.from_properties(props, lambda value: template.resolve(value, refs, attributes))
            on_failure = self._on_failure(props, refs, attributes, label)
            thread = threading.Thread(target=self._consume, name=f"stream-{function}", daemon=True, args=(
                self._client("dynamodbstreams", os.environ["AWS_ENDPOINT_URL_DYNAMODB"]), stream_arn,
                pools[function].invoke, mapping, on_failure,
                f"arn:aws:lambda:{self.region}:{account}:function:{function}", label))
            thread.start()
            self.threads.append(thread)
            print(f"{label}: batches of {mapping.batch_size}"
                  f"{', ReportBatchItemFailures' if mapping.report_failures else ''}"
                  f"{', bisect on error' if mapping.bisect else ''}, {mapping.max_retries} retries, "
                  f"polled every {POLL_SECONDS:g} s when idle", flush=True)

    def _on_failure(self, props: dict[str, Any], refs: dict[str, str], attributes: dict[tuple[str, str], str],
                    label: str) -> Callable[[dict[str, Any]], None]:
        destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if destination is None:
            return lambda _message: log.error("%s: no on-failure destination; the batch is dropped", label)
        arn = template.resolve(destination, refs, attributes)
        url = next((refs[name] for (name, attribute), value in attributes.items()
                    if attribute == "Arn" and value == arn and name in refs), None)
        if url is None:
            raise SystemExit(f"{label}: no local queue has the ARN {arn} (OnFailure)")
        sqs = self._client("sqs", os.environ["AWS_ENDPOINT_URL_SQS"])
        return lambda message: sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))

    def _consume(self, streams: Any, stream_arn: str, invoke: Callable[[dict[str, Any]], Any], mapping: Mapping,
                 on_failure: Callable[[dict[str, Any]], None], function_arn: str, label: str) -> None:
        """A consumer per shard, parents before children (as Lambda orders them); new shards looked for
        every 10 s."""
        started: dict[str, threading.Thread] = {}
        while not self.stopping.is_set():
            try:
                shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"].get("Shards", [])
            except Exception:
                shards = []
                if not self.stopping.is_set():
                    log.exception("%s: describing the stream failed", label)
            for shard in shards:
                shard_id, parent = shard["ShardId"], shard.get("ParentShardId")
                if shard_id in started or (parent in started and started[parent].is_alive()):
                    continue
                consumer = ShardConsumer(streams, stream_arn, shard_id, invoke, mapping, on_failure, function_arn,
                                         self.region, label, sleep=self.stopping.wait)
                started[shard_id] = threading.Thread(target=consumer.run, args=(self.stopping,), daemon=True,
                                                     name=f"shard-{shard_id[-8:]}")
                started[shard_id].start()
            self.stopping.wait(10)
        for thread in started.values():
            thread.join(timeout=5)

    # -- GET /local/events

    def serve_events(self, app: Callable) -> Callable:
        """`app` with `GET /local/events` answered here."""

        def wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != EVENTS_PATH:
                return app(environ, start_response)
            request = Request(environ)
            if request.method != "GET":
                response = Response(json.dumps({"message": f"{EVENTS_PATH} answers GET only",
                                                "exception": "MethodNotAllowedException"}),
                                    status=405, content_type="application/json", headers={"Allow": "GET"})
                return response(environ, start_response)
            log.info("GET %s: watching the bus (%d event(s) so far)", EVENTS_PATH, len(self.published))
            response = Response(self._event_stream(), status=200, content_type="text/event-stream; charset=utf-8",
                                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                                direct_passthrough=True)
            return response(environ, start_response)

        return wsgi

    def _event_stream(self) -> Iterator[bytes]:
        yield b": the change feed of this local run (every event since the server started, then new ones)\n\n"
        sent = 0
        while True:
            with self.condition:
                if len(self.published) <= sent and not self.stopping.is_set():
                    self.condition.wait(15)
                if self.stopping.is_set():
                    return
                batch = self.published[sent:]
                sent += len(batch)
            if not batch:
                yield b": keep-alive\n\n"
            for entry in batch:
                yield f"data: {json.dumps(entry, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()

    # -- stop

    def stop(self) -> None:
        self.stopping.set()
        with self.condition:
            self.condition.notify_all()
        for thread in self.threads:
            thread.join(timeout=5)
        for server in self.servers:
            server.shutdown()
            server.server_close()
