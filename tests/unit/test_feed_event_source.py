"""The local run's emulation of Lambda's DynamoDB event source mapping (local/stream.py,
ShardConsumer), which the API-tier feed tests and `make run` rely on: pure, with a fake stream of one
shard and a fake function (no moto, no sleeping)."""

from __future__ import annotations

import time

import pytest

from local.stream import MAX_PAYLOAD, Mapping, ShardConsumer


class FakeStream:
    """GetShardIterator / GetRecords over a list of records (as boto3 returns them)."""

    def __init__(self, count: int, size: int = 10, created: float | None = None):
        created = time.time() if created is None else created
        self.records = [{"eventID": str(n), "eventName": "MODIFY", "dynamodb": {
            "SequenceNumber": str(1000 + n), "ApproximateCreationDateTime": created, "Keys": {},
            "NewImage": {"pad": {"S": "x" * size}}}} for n in range(count)]

    def get_shard_iterator(self, **kw):
        assert kw["ShardIteratorType"] == "TRIM_HORIZON"
        return {"ShardIterator": "0"}

    def get_records(self, ShardIterator, Limit):
        start = int(ShardIterator)
        page = self.records[start:start + Limit]
        return {"Records": page, "NextShardIterator": str(start + len(page))}


def _numbers(batch) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) - 1000 for r in batch["Records"]]


def _consumer(stream, function, **settings):
    given_up: list[dict] = []
    mapping = Mapping(**{"batch_size": 10, "report_failures": True, **settings})
    consumer = ShardConsumer(stream, "arn:aws:dynamodb:us-east-1:1:table/t/stream/s", "shard-1", function, mapping,
                             given_up.append, "arn:aws:lambda:us-east-1:1:function:f", sleep=lambda s: None)
    return consumer, given_up


def test_batches_come_in_order_of_the_batch_size_and_each_once_on_success():
    seen = []
    consumer, given_up = _consumer(FakeStream(25), lambda batch: seen.append(_numbers(batch)) or {})
    consumer.drain()
    assert seen == [list(range(10)), list(range(10, 20)), list(range(20, 25))] and given_up == []
    assert consumer.buffer == [] and consumer.invocations == 3


def test_a_reported_failure_retries_from_the_lowest_reported_record():
    seen = []

    def function(batch):
        numbers = _numbers(batch)
        seen.append(numbers)
        failed = [n for n in numbers if n in (4, 7)] if len(seen) == 1 else []
        return {"batchItemFailures": [{"itemIdentifier": str(1000 + n)} for n in failed]}

    consumer, _ = _consumer(FakeStream(12), function)
    consumer.drain()
    assert seen == [list(range(10)), list(range(4, 12))]  # 0-3 checkpointed, 4.. again with what followed


def test_an_answer_naming_no_record_of_the_batch_fails_the_whole_batch():
    seen = []

    def function(batch):
        seen.append(_numbers(batch))
        return {"batchItemFailures": [{"itemIdentifier": ""}]} if len(seen) == 1 else {}

    consumer, _ = _consumer(FakeStream(3), function)
    consumer.drain()
    assert seen == [[0, 1, 2], [0, 1, 2]]


def test_a_function_error_halves_the_batch_until_the_culprit_is_alone_then_gives_it_up():
    seen = []

    def function(batch):
        numbers = _numbers(batch)
        seen.append(numbers)
        if 5 in numbers:
            raise RuntimeError("crash")
        return {}

    consumer, given_up = _consumer(FakeStream(8), function, bisect=True, max_retries=5)
    consumer.drain()
    # halved, the good half done; then what follows it (the other half) halved again, ...
    assert seen[:5] == [list(range(8)), [0, 1, 2, 3], [4, 5, 6, 7], [4, 5], [4]]
    assert seen[seen.index([5]) - 1] == [5, 6, 7] and seen[-1] == [6, 7]  # ... until 5 is alone, given up
    assert all(numbers == [5] for numbers in seen[seen.index([5]):-1])
    [message] = given_up
    info = message["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("1005", "1005", 1)
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["shardId"] == "shard-1" and info["streamArn"].endswith("/stream/s")


def test_without_bisection_the_whole_batch_is_retried_then_given_up():
    calls = []
    consumer, given_up = _consumer(FakeStream(3), lambda batch: calls.append(1) or 1 / 0, max_retries=2)
    consumer.drain()
    assert len(calls) == 3 and given_up[0]["DDBStreamBatchInfo"]["batchSize"] == 3


def test_records_older_than_the_maximum_age_are_given_up_without_an_invocation():
    consumer, given_up = _consumer(FakeStream(2, created=time.time() - 7200), lambda batch: pytest.fail("invoked"),
                                   max_record_age=3600)
    consumer.drain()
    assert given_up[0]["requestContext"]["condition"] == "RecordAgeExceeded"


def test_a_batch_stays_under_lambda_s_6_mb():
    seen = []
    consumer, _ = _consumer(FakeStream(5, size=MAX_PAYLOAD // 3), lambda batch: seen.append(_numbers(batch)) or {})
    consumer.drain()
    assert seen == [[0, 1], [2, 3], [4]]
