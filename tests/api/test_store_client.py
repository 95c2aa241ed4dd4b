"""Who checks the store's DynamoDB requests (lib/store/table.py, client_config): inside Lambda,
DynamoDB alone (botocore's validator is never asked while requests are served); everywhere else (the
tests, the local run), botocore too, since moto lets some malformed requests through. And who reads
its answers: the item operations' as the JSON DynamoDB wrote, the rest by botocore (new_client)."""

from __future__ import annotations

import json

import boto3
import botocore.session
import botocore.validate
import pytest
from botocore.exceptions import ParamValidationError
from botocore.parsers import JSONParser

from lib.store import table as store_table

MALFORMED = {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "x"}},
             "Limit": 0}  # Limit must be at least 1


@pytest.fixture
def validations(monkeypatch):
    """The names of the requests botocore's parameter validator is asked to check."""
    asked: list[str] = []
    original = botocore.validate.ParamValidator.validate

    def counted(self, params, shape):
        asked.append(shape.name)
        return original(self, params, shape)

    monkeypatch.setattr(botocore.validate.ParamValidator, "validate", counted)
    return asked


@pytest.fixture
def in_lambda(table, environment):
    """The process as inside a deployed function (the settings it needs there), with the store's
    client built again for it; built again as before afterwards."""
    environment(AWS_LAMBDA_FUNCTION_NAME="context-services-test", ACCESS_MODE="off", PAGE_TOKEN_SECRET="k" * 32)
    yield store_table.reset_client()
    environment(AWS_LAMBDA_FUNCTION_NAME=None, ACCESS_MODE=None, PAGE_TOKEN_SECRET=None)
    store_table.reset_client()


def test_inside_lambda_requests_are_served_without_botocores_parameter_validation(api, in_lambda, validations):
    # The spy sees a client with botocore's default settings validate.
    with pytest.raises(ParamValidationError):
        boto3.client("dynamodb").query(TableName=store_table.table_name(), **MALFORMED)
    assert validations == ["QueryInput"]
    validations.clear()
    sid = api.start(customer_id="c-validation")
    assert api.post(f"/services/{sid}/states/start", {"state_type": "s"}).status == 201
    assert api.post(f"/services/{sid}/tasks/start", {"state_id": 1, "task_type": "t"}).status == 201
    assert api.get(f"/services/{sid}?active_states=true&active_tasks=true").status == 200
    assert api.get("/customers/c-validation/services").status == 200
    assert api.post(f"/services/{sid}/end", {}).status == 204
    assert validations == []
    # A malformed request goes out as it is, for DynamoDB to refuse (moto answers it).
    store_table.client().query(TableName=store_table.table_name(), **MALFORMED)
    assert validations == []


def test_outside_lambda_botocore_checks_every_request_the_store_builds(api, table, validations):
    sid = api.start(customer_id="c-validated")
    assert api.get(f"/services/{sid}").status == 200
    assert validations == ["PutItemInput", "GetItemInput"]
    with pytest.raises(ParamValidationError):
        store_table.client().query(TableName=store_table.table_name(), **MALFORMED)


# ---------------------------------------------------------------- the answers' parser


@pytest.fixture
def walked(monkeypatch) -> list[str]:
    """The shapes botocore's JSON parser walks an answer against (none, for an answer read as it is)."""
    shapes: list[str] = []
    original = JSONParser._parse_shape

    def spy(self, shape, node):
        shapes.append(shape.name)
        return original(self, shape, node)

    monkeypatch.setattr(JSONParser, "_parse_shape", spy)
    return shapes


def _dynamodb_model():
    return botocore.session.get_session().get_service_model("dynamodb")


def _blobs_and_timestamps(shape, path: str, seen: set[str]) -> list[str]:
    """Where in `shape` a value botocore converts (a blob, a timestamp) can be, outside the attribute
    values' binary members (B, BS), which the store never writes (lib.store.codec refuses them)."""
    if shape.type_name in ("blob", "timestamp"):
        return [path]
    if shape.name in seen:
        return []
    seen = seen | {shape.name}
    if shape.type_name == "structure":
        return [found for name, member in shape.members.items()
                if not (shape.name == "AttributeValue" and name in ("B", "BS"))
                for found in _blobs_and_timestamps(member, f"{path}.{name}", seen)]
    if shape.type_name == "list":
        return _blobs_and_timestamps(shape.member, f"{path}[]", seen)
    if shape.type_name == "map":
        return _blobs_and_timestamps(shape.value, f"{path}{{}}", seen)
    return []


def test_the_item_operations_answers_hold_nothing_botocore_would_convert():
    model = _dynamodb_model()
    outputs = {model.operation_model(name).output_shape.name: name for name in model.operation_names
               if model.operation_model(name).output_shape is not None}
    assert store_table.PLAIN_OUTPUTS <= set(outputs)  # every name is an answer of DynamoDB's API
    for name in sorted(store_table.PLAIN_OUTPUTS):
        assert _blobs_and_timestamps(model.operation_model(outputs[name]).output_shape, name, set()) == [], name
    # The check itself sees a timestamp where the model has one.
    assert _blobs_and_timestamps(model.operation_model("DescribeTable").output_shape, "DescribeTable", set())


VALUES = {"s": {"S": "é\u2028\""}, "n": {"N": "-12.5"}, "t": {"BOOL": True}, "z": {"NULL": True},
          "l": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"k": {"SS": ["x", "y"]}}}]}, "ns": {"NS": ["1", "2"]}}


def _answer(status: int, body: dict) -> dict:
    return {"status_code": status, "headers": {"x-amzn-RequestId": "r-1", "Content-Type": "application/x-amz-json-1.0"},
            "body": json.dumps(body).encode()}


ANSWERS = {
    "GetItem": {"Item": VALUES, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}},
    "Query": {"Items": [VALUES, {"PK": {"S": "p"}}], "Count": 2, "ScannedCount": 2,
              "LastEvaluatedKey": {"PK": {"S": "p"}, "SK": {"S": "s"}}},
    "BatchGetItem": {"Responses": {"t": [VALUES]}, "UnprocessedKeys": {"t": {"Keys": [{"PK": {"S": "p"}}]}}},
    "PutItem": {"Attributes": VALUES},
    "UpdateItem": {"Attributes": VALUES, "ItemCollectionMetrics": {"ItemCollectionKey": {"PK": {"S": "p"}},
                                                                   "SizeEstimateRangeGB": [1.0, 2.0]}},
    "DeleteItem": {},
    "TransactWriteItems": {"ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 2.0}]},
    "BatchWriteItem": {"UnprocessedItems": {"t": [{"PutRequest": {"Item": VALUES}}]}},
}


@pytest.mark.parametrize("operation", sorted(ANSWERS))
def test_the_store_reads_an_item_operations_answer_as_botocore_does(operation):
    output = _dynamodb_model().operation_model(operation).output_shape
    assert output.name in store_table.PLAIN_OUTPUTS
    answer = _answer(200, ANSWERS[operation])
    assert store_table._Parsers().create_parser("json").parse(answer, output) == JSONParser().parse(answer, output)


def test_errors_and_other_operations_are_parsed_by_botocore(walked):
    model = _dynamodb_model()
    parser = store_table._Parsers().create_parser("json")
    refused = _answer(400, {"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                            "Message": "cancelled", "CancellationReasons": [{"Code": "ConditionalCheckFailed",
                                                                            "Item": VALUES}]})
    parsed = parser.parse(refused, model.operation_model("TransactWriteItems").output_shape)
    assert parsed["Error"]["Code"] == "TransactionCanceledException"
    # botocore's second pass over an error, with the error's own shape: walked as botocore walks it.
    modeled = parser.parse(refused, model.shape_for_error_code("TransactionCanceledException"))
    assert "TransactionCanceledException" in walked
    assert modeled["CancellationReasons"] == [{"Code": "ConditionalCheckFailed", "Item": VALUES}]
    assert not {model.shape_for_error_code(code).name for code in (
        "TransactionCanceledException", "ConditionalCheckFailedException", "ProvisionedThroughputExceededException",
        "ThrottlingException", "InternalServerError")} & store_table.PLAIN_OUTPUTS
    described = parser.parse(_answer(200, {"Table": {"TableName": "t", "CreationDateTime": 1700000000.5}}),
                             model.operation_model("DescribeTable").output_shape)
    assert described["Table"]["CreationDateTime"].year == 2023  # a timestamp, converted
    assert "DescribeTableOutput" in walked
    walked.clear()
    parser.parse(_answer(200, ANSWERS["Query"]), model.operation_model("Query").output_shape)
    assert walked == []


def test_clients_built_at_once_leave_botocores_parsers_to_every_other_client(table):
    import threading

    botocores = type(botocore.session.get_session().get_component("response_parser_factory"))
    for _ in range(5):  # (without the lock, 4 threads left ours in place in about half the rounds)
        built: list = []
        threads = [threading.Thread(target=lambda: built.append(store_table.new_client())) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(built) == 8
        assert all(isinstance(client._endpoint._response_parser_factory, store_table._Parsers) for client in built)
        assert type(boto3.DEFAULT_SESSION._session.get_component("response_parser_factory")) is botocores


def test_only_the_stores_client_reads_answers_as_they_are(api, table, walked):
    sid = api.start(customer_id="c-parsed")
    walked.clear()
    assert api.post(f"/services/{sid}/states/start", {"state_type": "s"}).status == 201
    assert api.get(f"/services/{sid}?active_states=true").status == 200
    assert api.get("/customers/c-parsed/services").status == 200
    assert walked == []
    boto3.client("dynamodb").get_item(TableName=store_table.table_name(), Key={"PK": {"S": "x"}, "SK": {"S": "y"}})
    assert "GetItemOutput" in walked  # another client: botocore's parse
