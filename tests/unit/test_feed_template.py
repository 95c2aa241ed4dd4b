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
                                                     "EVENT_SOURCE": {"Ref": "FeedEventSource"},
                                                     "ACCESS_MODE": "iam"}  # for the store's settings


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


def test_the_publisher_s_deployed_environment_lets_it_read_the_table():
    """Inside Lambda the store's settings refuse a function whose environment lacks what they need
    (ACCESS_MODE among them): the publisher's one read of the table (lib.rules.feed, for a service's
    end whose cascade is read) must load them from the template's environment alone, Globals and its
    own plain values, nothing added here but Lambda's variables and what the template takes from
    resources."""
    import os
    import subprocess
    import sys

    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update({key: value for key, value in template.plain_environment().items() if value})
    [publisher] = [f for f in template.functions() if f.handler == "handlers.feed.lambda_handler"]
    env.update({key: str(value) for key, value in publisher.environment.items()
                if isinstance(value, (str, int)) and not isinstance(value, bool)})
    env.update(AWS_LAMBDA_FUNCTION_NAME="publisher", AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               # What the template takes from resources (!Ref), stood in for:
               TABLE_NAME="the-table", EVENT_BUS_NAME="the-bus", EVENT_SOURCE="context-services",
               PAGE_TOKEN_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:paging")
    code = ("import handlers.feed\n"
            "from lib.rules import feed\n"
            "from lib.store.table import table_name\n"
            "print(table_name())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=template.ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "the-table", done.stderr[-2000:]
