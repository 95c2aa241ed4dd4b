"""The moto table the API tests and the local run use: created from template.yaml (with its TTL), and
the fidelity patches of the embedded DynamoDB (local.embedded_dynamodb) keep DynamoDB's results."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

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


def test_table_built_from_template_has_ttl(table):
    description = table.describe_time_to_live(TableName=os.environ["TABLE_NAME"])["TimeToLiveDescription"]
    assert description["AttributeName"] == "expire_at" and description["TimeToLiveStatus"] == "ENABLED"
