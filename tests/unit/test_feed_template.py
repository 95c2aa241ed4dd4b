"""The change feed's resources in template.yaml, as README and docs/DESIGN.md describe them (pure: the
parsed template; `make test` also runs cfn-lint on it)."""

from __future__ import annotations

from local import template

RESOURCES = template.load()["Resources"]


def _props(name: str) -> dict:
    return RESOURCES[name]["Properties"]


def test_the_table_streams_old_and_new_images():
    assert _props("ContextTable")["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_the_publisher_reads_the_stream_as_the_docs_say():
    mapping = _props("PublisherStreamMapping")
    assert RESOURCES["PublisherStreamMapping"]["Type"] == "AWS::Lambda::EventSourceMapping"
    assert mapping["FunctionName"] == {"Ref": "PublisherFunction.Alias"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["ContextTable", "StreamArn"]}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (100, 0)
    assert mapping["ParallelizationFactor"] == {"Ref": "FeedParallelizationFactor"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert (mapping["MaximumRetryAttempts"], mapping["MaximumRecordAgeInSeconds"]) == (10, 3600)
    assert mapping["MaximumRecordAgeInSeconds"] < 24 * 3600  # given up on while the stream still holds it
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["FeedDeadLetterQueue",
                                                                                        "Arn"]}}}
    publisher = _props("PublisherFunction")
    assert publisher["Handler"] == "handlers.feed.lambda_handler" and "Events" not in publisher
    assert publisher["Environment"]["Variables"] == {"EVENT_BUS_NAME": {"Ref": "FeedBus"},
                                                     "EVENT_SOURCE": {"Ref": "FeedEventSource"}}


def test_the_publisher_may_do_what_it_needs_and_nothing_else():
    statements = _props("PublisherFunction")["Policies"][0]["Statement"]
    granted = {(a if isinstance(a, str) else tuple(a), str(s["Resource"])) for s in statements
               for a in [s["Action"]]}
    assert granted == {
        ("events:PutEvents", str({"Fn::GetAtt": ["FeedBus", "Arn"]})),
        (("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"),
         str({"Fn::GetAtt": ["ContextTable", "StreamArn"]})),
        ("dynamodb:ListStreams", str({"Fn::Sub": "${ContextTable.Arn}/stream/*"})),
        ("sqs:SendMessage", str({"Fn::GetAtt": ["FeedDeadLetterQueue", "Arn"]})),
        # the one read of the table: a conversation's active children, by the status index
        ("dynamodb:Query", str({"Fn::Sub": "${ContextTable.Arn}/index/LSI1"})),
    }
    put = next(s for s in statements if s["Action"] == "events:PutEvents")
    assert put["Condition"] == {"StringEquals": {"events:source": {"Ref": "FeedEventSource"}}}
    assert all(s["Effect"] == "Allow" and "*" not in str(s["Resource"]).replace("/stream/*", "") for s in statements)


def test_the_bus_its_archive_and_what_watches_the_feed():
    assert RESOURCES["FeedBus"]["Type"] == "AWS::Events::EventBus"
    archive = _props("FeedArchive")
    assert archive["SourceArn"] == {"Fn::GetAtt": ["FeedBus", "Arn"]}
    assert archive["RetentionDays"] == {"Ref": "FeedArchiveRetentionDays"}
    dead_letters = _props("FeedDeadLetterAlarm")
    assert (dead_letters["Namespace"], dead_letters["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dead_letters["Dimensions"] == [{"Name": "QueueName",
                                           "Value": {"Fn::GetAtt": ["FeedDeadLetterQueue", "QueueName"]}}]
    assert (dead_letters["Threshold"], dead_letters["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    age = _props("FeedIteratorAgeAlarm")
    assert (age["Namespace"], age["MetricName"], age["Threshold"]) == (
        "AWS/Lambda", "IteratorAge", {"Ref": "FeedIteratorAgeAlarmMs"})
    parameters = template.load()["Parameters"]
    assert parameters["FeedEventSource"]["Default"] == "context-services"
    outputs = template.load()["Outputs"]
    assert {"FeedBusName", "FeedBusArn", "FeedArchiveArn", "FeedDeadLetterQueueUrl"} <= set(outputs)
