"""template.yaml as CloudFormation receives it: after the SAM transform (aws-sam-translator, run here
without an AWS account), which adds roles, managed policies, rules and mappings of its own.

* Least privilege: no identity policy allows `Resource: "*"` except for logs and X-Ray actions; the
  only AWS managed policies are the expected ones (logs and X-Ray); no resource policy allows anyone.
* The paging key is never in a function's environment: only its secret's ARN, and each function may
  read exactly that secret.
* Failures are seen: alarms on the job dead-letter queue and on the age of the oldest job message;
  the schedule's target retries and has a dead-letter queue, as do failed scheduled runs.
* Concurrency is bounded: reserved concurrency on every function, the job queue's MaximumConcurrency
  below the maintenance function's, and the defaults leave the account's unreserved minimum.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local import template

# The AWS managed policies the stack may attach, with what each allows (as AWS publishes them):
# logs and X-Ray only, on "*" because log groups and trace segments have no narrower resource.
EXPECTED_MANAGED_POLICIES = {
    "service-role/AWSLambdaBasicExecutionRole": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
    "AWSXrayWriteOnlyAccess": {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                               "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"},
    "service-role/AmazonAPIGatewayPushToCloudWatchLogs": {
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams",
        "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents"},
}
WILDCARD_SERVICES = ("logs:", "xray:")
FUNCTIONS = ("ServicesFunction", "StatesFunction", "TasksFunction", "MaintenanceFunction")
UNRESERVED_MINIMUM = 100  # Lambda keeps at least this much of an account's concurrency unreserved
DEFAULT_ACCOUNT_CONCURRENCY = 1000


def transformed(source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template after the SAM transform (CodeUri as `sam package` would have rewritten it)."""
    from samtranslator.translator.transform import transform

    document = copy.deepcopy(source or template.load())
    document.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://bucket/package.zip"

    class NoManagedPolicyLookups:
        def load(self) -> dict[str, str]:
            return {}

    return transform(document, {}, NoManagedPolicyLookups())


@pytest.fixture(scope="module")
def deployed() -> dict[str, Any]:
    return transformed()["Resources"]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _identity_statements(resources: dict[str, Any]):
    """(resource, statement) of every identity policy: roles' inline policies, IAM policies."""
    for name, resource in resources.items():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [props["PolicyDocument"]]
        else:
            continue
        for document in documents:
            for statement in _listed(document["Statement"]):
                yield name, statement


def _managed_policy_name(arn: Any) -> str:
    text = arn["Fn::Sub"] if isinstance(arn, dict) and "Fn::Sub" in arn else arn
    assert isinstance(text, str) and ":iam::aws:policy/" in text, f"not an AWS managed policy: {arn}"
    return text.split(":iam::aws:policy/", 1)[1]


def wildcard_grants(resources: dict[str, Any]) -> list[str]:
    """What allows more than logs and X-Ray on every resource (or through NotAction / NotResource)."""
    found = []
    for name, statement in _identity_statements(resources):
        if statement.get("Effect") != "Allow":
            continue
        actions = [a for a in _listed(statement.get("Action", [])) if isinstance(a, str)]
        if "NotAction" in statement or "NotResource" in statement:
            found.append(f"{name}: NotAction / NotResource {statement}")
        elif any(a == "*" or a.endswith(":*") for a in actions):
            found.append(f"{name}: every action of a service {actions}")
        elif "*" in _listed(statement.get("Resource")) and not all(a.startswith(WILDCARD_SERVICES) for a in actions):
            found.append(f"{name}: Resource \"*\" for {actions}")
    for name, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            for arn in resource["Properties"].get("ManagedPolicyArns", []):
                if (isinstance(arn, dict) and set(arn) == {"Ref"}
                        and resources.get(arn["Ref"], {}).get("Type") == "AWS::IAM::ManagedPolicy"):
                    continue  # the template's own policy (the viewer's roles): its statements are checked above
                if _managed_policy_name(arn) not in EXPECTED_MANAGED_POLICIES:
                    found.append(f"{name}: managed policy {_managed_policy_name(arn)}")
    return found


def test_no_identity_policy_allows_every_resource_beyond_logs_and_xray(deployed):
    assert wildcard_grants(deployed) == []
    roles = [name for name, resource in deployed.items() if resource["Type"] == "AWS::IAM::Role"]
    assert {f"{function}Role" for function in FUNCTIONS} <= set(roles)  # the generated roles were read


def test_the_expected_managed_policies_grant_logs_and_xray_only():
    assert all(action.startswith(WILDCARD_SERVICES) for actions in EXPECTED_MANAGED_POLICIES.values()
               for action in actions)


def test_the_check_sees_what_sams_sqs_event_would_attach():
    """SAM's SQS event attaches AWSLambdaSQSQueueExecutionRole (receive and delete on every queue of
    the account): the check refuses it, so the explicit event source mapping must stay."""
    source = copy.deepcopy(template.load())
    source["Resources"]["MaintenanceFunction"]["Properties"]["Events"]["Jobs"] = {
        "Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["MaintenanceJobQueue", "Arn"]}, "BatchSize": 1}}
    del source["Resources"]["MaintenanceJobSource"]
    assert wildcard_grants(transformed(source)["Resources"]) == [
        "MaintenanceFunctionRole: managed policy service-role/AWSLambdaSQSQueueExecutionRole"]


def test_the_check_sees_an_inline_wildcard():
    source = copy.deepcopy(template.load())
    statements = source["Resources"]["TasksFunction"]["Properties"]["Policies"][0]["Statement"]
    statements.append({"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "*"})
    assert wildcard_grants(transformed(source)["Resources"]) == [
        "TasksFunctionRole: Resource \"*\" for ['sqs:SendMessage']"]


def test_no_resource_policy_allows_anyone(deployed):
    for name, resource in deployed.items():
        if resource["Type"] not in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"):
            continue
        for statement in _listed(resource["Properties"]["PolicyDocument"]["Statement"]):
            if statement["Effect"] == "Allow":
                principal = statement["Principal"]
                assert principal != "*" and "*" not in _listed(principal.get("AWS", [])), name
                assert statement.get("Condition"), f"{name}: an Allow without a condition"


def test_the_job_queue_reaches_the_maintenance_alias_through_its_own_mapping(deployed):
    every = [r["Properties"] for r in deployed.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    # The other mapping is the change feed's: the table's stream to the publisher (its own test).
    assert sorted(m["EventSourceArn"]["Fn::GetAtt"][0] for m in every) == ["ContextTable", "MaintenanceJobQueue"]
    mappings = [m for m in every if m["EventSourceArn"]["Fn::GetAtt"][0] == "MaintenanceJobQueue"]
    assert mappings == [{
        "EventSourceArn": {"Fn::GetAtt": ["MaintenanceJobQueue", "Arn"]},
        "FunctionName": {"Ref": "MaintenanceFunctionAliaslive"}, "BatchSize": 1,
        "FunctionResponseTypes": ["ReportBatchItemFailures"], "ScalingConfig": {"MaximumConcurrency": {"Ref": "JobConcurrency"}}}]
    statements = [s for name, s in _identity_statements(deployed) if name == "MaintenanceFunctionRole"]
    receive = [s for s in statements if "sqs:ReceiveMessage" in _listed(s["Action"])]
    assert [s["Resource"] for s in receive] == [{"Fn::GetAtt": ["MaintenanceJobQueue", "Arn"]}]


# ---------------------------------------------------------------- the paging key


def test_the_paging_key_is_never_in_a_function_environment(deployed):
    functions = {name: r for name, r in deployed.items() if r["Type"] == "AWS::Lambda::Function"}
    # The API's functions, the journey viewer's (static files) and the change feed's publisher.
    assert set(functions) == set(FUNCTIONS) | {"ViewerFunction", "PublisherFunction"}
    for name, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert "{{resolve:" not in repr(variables), name  # no dynamic reference resolved into the environment
        if name in FUNCTIONS:
            assert variables["PAGE_TOKEN_SECRET_ARN"] == {"Ref": "PageTokenSecret"}
        assert variables.get("PAGE_TOKEN_SECRET", "") == "", name
    assert "{{resolve:" not in repr(deployed)


def test_each_function_may_read_exactly_the_paging_secret(deployed):
    for function in FUNCTIONS:
        reads = [s for name, s in _identity_statements(deployed) if name == f"{function}Role"
                 and any(a.startswith("secretsmanager:") for a in _listed(s["Action"]))]
        assert [(s["Action"], s["Resource"]) for s in reads] == [
            ("secretsmanager:GetSecretValue", {"Ref": "PageTokenSecret"})], function


# ---------------------------------------------------------------- failures are seen


def _alarm_on(deployed: dict[str, Any], metric: str, queue: str) -> dict[str, Any]:
    found = [r["Properties"] for r in deployed.values() if r["Type"] == "AWS::CloudWatch::Alarm"
             and r["Properties"].get("MetricName") == metric and r["Properties"].get("Namespace") == "AWS/SQS"
             and r["Properties"]["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]]
    assert len(found) == 1, f"no alarm on {metric} of {queue}"
    return found[0]


def test_alarms_watch_the_job_dead_letter_queue_and_the_oldest_job_message(deployed):
    depth = _alarm_on(deployed, "ApproximateNumberOfMessagesVisible", "MaintenanceJobDeadLetterQueue")
    assert (depth["Threshold"], depth["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    age = _alarm_on(deployed, "ApproximateAgeOfOldestMessage", "MaintenanceJobQueue")
    assert age["Threshold"] == {"Ref": "AlarmJobAgeSeconds"}
    assert template.load()["Parameters"]["AlarmJobAgeSeconds"]["Default"] >= 180  # above one visibility timeout
    for alarm in (depth, age):
        assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    queue = deployed["MaintenanceJobQueue"]["Properties"]["RedrivePolicy"]
    assert queue["deadLetterTargetArn"] == {"Fn::GetAtt": ["MaintenanceJobDeadLetterQueue", "Arn"]}


def test_the_schedule_target_retries_and_has_a_dead_letter_queue(deployed):
    rules = {name: r for name, r in deployed.items() if r["Type"] == "AWS::Events::Rule"}
    assert list(rules) == ["MaintenanceFunctionAutoComplete"]
    (target,) = rules["MaintenanceFunctionAutoComplete"]["Properties"]["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}
    # EventBridge may write there, only for this rule.
    (statement,) = deployed["ScheduleDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["MaintenanceFunctionAutoComplete",
                                                                                   "Arn"]}}}
    # A run that fails inside the function (EventBridge invokes asynchronously) ends there too.
    (invoke_config,) = [r["Properties"] for r in deployed.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert invoke_config["Qualifier"] == "live"
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == target["DeadLetterConfig"]["Arn"]
    depth = _alarm_on(deployed, "ApproximateNumberOfMessagesVisible", "ScheduleDeadLetterQueue")
    assert depth["Threshold"] == 0


# ---------------------------------------------------------------- concurrency


def test_every_function_has_bounded_concurrency_within_the_account_pool(deployed):
    parameters = template.load()["Parameters"]
    reserved = {}
    for function in FUNCTIONS:
        value = deployed[function]["Properties"]["ReservedConcurrentExecutions"]
        (condition, (reference, none)) = value["Fn::If"][0], value["Fn::If"][1:]
        assert none == {"Ref": "AWS::NoValue"} and condition in ("ReserveApi", "ReserveMaintenance")
        reserved[function] = parameters[reference["Ref"]]["Default"]
    assert all(count > 0 for count in reserved.values())
    assert DEFAULT_ACCOUNT_CONCURRENCY - sum(reserved.values()) >= UNRESERVED_MINIMUM
    # Jobs never take every slot of the maintenance function: its routes and the schedule keep some,
    # and SQS deliveries are not throttled (a throttled delivery counts towards the dead-letter queue).
    assert parameters["JobConcurrency"]["Default"] < reserved["MaintenanceFunction"]

