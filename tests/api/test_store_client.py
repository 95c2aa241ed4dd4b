"""Who checks the store's DynamoDB requests (lib/store/table.py, client_config): inside Lambda,
DynamoDB alone (botocore's validator is never asked while requests are served); everywhere else (the
tests, the local run), botocore too, since moto lets some malformed requests through."""

from __future__ import annotations

import boto3
import botocore.validate
import pytest
from botocore.exceptions import ParamValidationError

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
