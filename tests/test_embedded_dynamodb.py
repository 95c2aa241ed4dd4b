"""The fidelity patches of the embedded DynamoDB (local.embedded_dynamodb) keep DynamoDB's results."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from local import embedded_dynamodb

TABLE = os.environ["TABLE_NAME"]


def put(client, pk, sk, **extra):
    item = {"PK": {"S": pk}, "SK": {"S": sk}, **{k: {"S": v} for k, v in extra.items()}}
    client.put_item(TableName=TABLE, Item=item)


def test_queries_read_only_their_partition_and_page_correctly(table):
    for n in range(7):
        put(table, "p1", f"s{n}", GSI1PK="g1", GSI1SK=f"k{n}")
        put(table, "p2", f"s{n}", GSI1PK="g2", GSI1SK=f"k{n}")
    seen, start = [], None
    while True:
        kwargs = {"ExclusiveStartKey": start} if start else {}
        page = table.query(TableName=TABLE, KeyConditionExpression="PK = :p", Limit=3,
                           ExpressionAttributeValues={":p": {"S": "p1"}}, **kwargs)
        seen += [item["SK"]["S"] for item in page["Items"]]
        assert page["ScannedCount"] <= 3
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert seen == [f"s{n}" for n in range(7)]
    index = table.query(TableName=TABLE, IndexName="GSI1", KeyConditionExpression="GSI1PK = :g AND GSI1SK >= :k",
                        ExpressionAttributeValues={":g": {"S": "g2"}, ":k": {"S": "k5"}})
    assert [(i["PK"]["S"], i["SK"]["S"]) for i in index["Items"]] == [("p2", "s5"), ("p2", "s6")]
    put(table, "p3", "x", GSI1PK="g2", GSI1SK="k9")  # a write after the index was read is seen
    index = table.query(TableName=TABLE, IndexName="GSI1", KeyConditionExpression="GSI1PK = :g",
                        ExpressionAttributeValues={":g": {"S": "g2"}})
    assert index["Count"] == 8


def test_failed_transaction_leaves_every_item_as_it_was(table):
    put(table, "a", "1", note="before")
    with pytest.raises(ClientError) as raised:
        table.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"PK": {"S": "new"}, "SK": {"S": "1"}}}},
            {"Update": {"TableName": TABLE, "Key": {"PK": {"S": "a"}, "SK": {"S": "1"}},
                        "UpdateExpression": "SET note = :n", "ExpressionAttributeValues": {":n": {"S": "after"}}}},
            {"ConditionCheck": {"TableName": TABLE, "Key": {"PK": {"S": "missing"}, "SK": {"S": "1"}},
                                "ConditionExpression": "attribute_exists(PK)"}},
        ])
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert "Item" not in table.get_item(TableName=TABLE, Key={"PK": {"S": "new"}, "SK": {"S": "1"}})
    kept = table.get_item(TableName=TABLE, Key={"PK": {"S": "a"}, "SK": {"S": "1"}})["Item"]
    assert kept["note"]["S"] == "before"


def test_oversized_update_changes_nothing(table):
    put(table, "big", "1", a="x" * 300_000)
    with pytest.raises(ClientError):
        table.update_item(TableName=TABLE, Key={"PK": {"S": "big"}, "SK": {"S": "1"}},
                          UpdateExpression="SET b = :b, c = :c",
                          ExpressionAttributeValues={":b": {"S": "y" * 90_000}, ":c": {"S": "z" * 90_000}})
    item = table.get_item(TableName=TABLE, Key={"PK": {"S": "big"}, "SK": {"S": "1"}})["Item"]
    assert set(item) == {"PK", "SK", "a"}


def test_item_reads_written_as_json_equal_what_motos_serializer_writes(api, monkeypatch):
    """direct_item_responses (the local run's server) skips moto's response serializer for item
    reads: for every read the API makes here, the JSON it would write equals moto's answer."""
    import json

    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    compared: list[str] = []

    def both(self, context):
        status, headers, body = original(self, context)
        if context.operation_model.name in embedded_dynamodb.ITEM_READS:
            assert json.loads(json.dumps(self.result)) == json.loads(body), context.operation_model.name
            compared.append(context.operation_model.name)
        return status, headers, body

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    ids = [api.post("/services/start", {"customer_id": "json", "service_type": 7, "x": {"a": [1, 2.5, None, True]}}
                    ).json["service_id"] for _ in range(3)]
    api.post(f"/services/{ids[0]}/states/start", {"state_type": "a", "y": "ü"})
    api.post(f"/services/{ids[0]}/tasks/start", {"task_type": "a", "state_id": 1})
    assert api.get("/customers/json/services?limit=2&active_states=true&extensions=*").status == 200
    assert api.get(f"/services/{ids[0]}?active_tasks=true&completed_tasks=true&extensions=*").status == 200
    assert api.get(f"/services/{ids[0]}/states?active_tasks=true").status == 200
    assert api.get("/services/999").status == 404
    assert api.post(f"/services/{ids[0]}/end", {}).status == 204
    assert api.get("/customers/json/services/completed").status == 200
    assert api.get("/maintenance/services/stream?time_from=2020-01-01T00:00:00Z&export_content=true").status == 200
    assert {"Query", "GetItem"} <= set(compared)
