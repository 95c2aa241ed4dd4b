"""The moto table the API tests and the local run use: created from template.yaml (with its TTL), and
the fidelity patches of the embedded DynamoDB (local.embedded_dynamodb) keep DynamoDB's results."""

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
    table.update_item(TableName=TABLE, Key={"PK": {"S": "big"}, "SK": {"S": "1"}}, UpdateExpression="SET m = :m",
                      ExpressionAttributeValues={":m": {"M": {"k": {"L": [{"S": "v"}]}}}})
    with pytest.raises(ClientError):
        table.update_item(TableName=TABLE, Key={"PK": {"S": "big"}, "SK": {"S": "1"}},
                          UpdateExpression="SET m.k[0] = :w, m.n = :w, b = :b, c = :c",
                          ExpressionAttributeValues={":w": {"S": "w"}, ":b": {"S": "y" * 90_000},
                                                     ":c": {"S": "z" * 90_000}})
    item = table.get_item(TableName=TABLE, Key={"PK": {"S": "big"}, "SK": {"S": "1"}})["Item"]
    assert set(item) == {"PK", "SK", "a", "m"}
    assert item["m"] == {"M": {"k": {"L": [{"S": "v"}]}}}  # nested values changed in place are restored too


def test_table_built_from_template_has_ttl(table):
    description = table.describe_time_to_live(TableName=os.environ["TABLE_NAME"])["TimeToLiveDescription"]
    assert description["AttributeName"] == "expire_at" and description["TimeToLiveStatus"] == "ENABLED"
def test_item_reads_written_as_json_equal_what_motos_serializer_writes(api, monkeypatch):
    """direct_item_responses (the local run's server) skips moto's response serializer for item
    reads: for every read the API makes here, the JSON it writes from moto's result (as moto found
    it, and as moto makes it plain) equals moto's answer."""
    import json

    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    original_init = DynamoResult.__init__
    compared: list[str] = []

    def keep_raw(self, result):
        self.raw = result  # moto's DynamoType values: what the server's writer gets
        original_init(self, result)

    def both(self, context):
        status, headers, body = original(self, context)
        if context.operation_model.name in embedded_dynamodb.ITEM_READS:
            answer = json.loads(body)
            assert json.loads(embedded_dynamodb.item_read_json(self.raw)) == answer, context.operation_model.name
            assert json.loads(embedded_dynamodb.item_read_json(self.result)) == answer, context.operation_model.name
            compared.append(context.operation_model.name)
        return status, headers, body

    monkeypatch.setattr(DynamoResult, "__init__", keep_raw)
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


def test_stream_records_written_as_json_equal_what_motos_serializer_writes(api, feed, monkeypatch):
    """direct_stream_records (the local run's server, the in-process tiers) skips moto's response
    serializer for GetRecords: for every read of the stream here (inserts, modifications and removals
    of services, states and tasks with attached data of every JSON kind), the JSON it writes equals
    what moto's serializer writes for the same result."""
    import json

    from moto.core.responses import ActionResult
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    answered: list[int] = []
    serialized = DynamoDBStreamsHandler.serialized

    def both(self, action_result):
        status, headers, body = serialized(self, action_result)
        if self._get_action() == "GetRecords":
            assert type(action_result) is not ActionResult  # the direct writer answered
            _, _, by_moto = serialized(self, ActionResult(action_result.result))
            assert json.loads(body) == json.loads(by_moto)
            assert headers["Content-Type"] == "application/x-amz-json-1.0"
            answered.append(len(json.loads(body)["Records"]))
        return status, headers, body

    monkeypatch.setattr(DynamoDBStreamsHandler, "serialized", both)
    sid = api.start(customer_id="records", x={"a": [1, 2.5, None, True, "ü"], "b": {"c": -0.001}})
    api.post(f"/services/{sid}/states/start", {"state_type": "a", "y": "😀", "z": 10**20})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "b", "state_id": 1, "w": []})
    api.put(f"/services/{sid}/extensions/x", {"d": False})
    api.post(f"/services/{sid}/tasks/1/end", {})
    assert api.post(f"/services/{sid}/end", {"disposition": "done"}).status == 204
    assert api.delete(f"/services/{sid}").status == 204
    records = feed.records()
    assert {r["eventName"] for r in records} >= {"INSERT", "MODIFY"}
    assert sum(answered) == len(records) and len(records) >= 6


def test_items_built_whole_keep_motos_size_limit(table):
    """linear_item_checks (the local run's server, the in-process tiers) measures an item once when
    moto builds it: for items of many attributes and nested values around moto's limit, below it, at
    it and one byte past it, the outcome (the item's attributes, or ItemSizeTooLarge) is moto's own;
    and a PutItem past the limit is refused as before."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    assert getattr(Item.__init__, "moto", None) is not None  # the one-pass builder is on
    key = DynamoType({"S": "k"})

    def attributes(filler: int) -> dict:
        attrs = {f"a{n}": {"M": {"x": {"L": [{"N": str(n)}, {"S": "ü" * 7}, {"BOOL": True}]}}} for n in range(40)}
        attrs["n"] = {"NULL": True}
        attrs["s"] = {"SS": ["a", "bb"]}
        attrs["pad"] = {"S": "p" * filler}
        return attrs

    base = sum(len(name.encode()) + DynamoType(value).size() for name, value in attributes(0).items())
    room = embedded_dynamodb.LIMITED_SIZE - base
    outcomes = []
    for filler in (0, 1000, room - 1, room, room + 1, room + 5000):
        results = []
        for build in (Item.__init__.moto, Item.__init__):
            item = Item.__new__(Item)
            try:
                build(item, key, None, attributes(filler))
                results.append(("built", item.to_json()))
            except ItemSizeTooLarge:
                results.append(("too large", None))
        assert results[0] == results[1], filler
        outcomes.append(results[0][0])
    assert outcomes == ["built"] * 4 + ["too large"] * 2
    with pytest.raises(ClientError, match="Item size has exceeded the maximum allowed size"):
        put(table, "huge", "1", a="x" * 410_000)


def test_attribute_sizes_are_motos(table):
    """linear_item_checks measures attribute values without copying them (DynamoType.size): on 2,000
    random values of every type, nested up to four deep, with multi-byte text and binaries, the
    measure is moto's own."""
    import random

    from moto.dynamodb.models.dynamo_type import DynamoType

    assert getattr(DynamoType.size, "moto", None) is not None  # the copy-free measure is on
    rng = random.Random(7)
    texts = ["", "a", "ü", "😀x", "long " * 20]

    def value(depth: int) -> dict:
        kind = rng.choice(["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"] + (["L", "M"] * 2 if depth < 4 else []))
        if kind == "S":
            return {"S": rng.choice(texts)}
        if kind == "N":
            return {"N": rng.choice(["0", "-1.5", "1e10", "12345678901234567890"])}
        if kind == "B":
            return {"B": rng.choice([b"", b"\x00\xff", "c3Ry"])}
        if kind == "BOOL":
            return {"BOOL": rng.random() < 0.5}
        if kind == "NULL":
            return {"NULL": True}
        if kind == "SS":
            return {"SS": rng.sample(texts, 3)}
        if kind == "NS":
            return {"NS": ["1", "2.25", "-3"][: rng.randint(1, 3)]}
        if kind == "BS":
            return {"BS": [b"a", b"\x01\x02"]}
        if kind == "L":
            return {"L": [value(depth + 1) for _ in range(rng.randint(0, 4))]}
        return {"M": {rng.choice(texts) + str(n): value(depth + 1) for n in range(rng.randint(0, 4))}}

    for _ in range(2000):
        typed = DynamoType(value(0))
        assert DynamoType.size(typed) == DynamoType.size.moto(typed), typed


def test_lean_key_range_queries_answer_what_moto_answers(table, monkeypatch):
    """lean_queries (the local run's server) answers a base-table Query from its key range only: for
    each key condition, direction, Limit and ExclusiveStartKey, page after page, the items, counts
    and LastEvaluatedKey are what moto answers by walking the whole partition (the 1 MB page limit
    included, also when it is passed by an item beyond the range)."""
    for n in range(12):
        put(table, "p", f"STATE#{n:04d}", blob="s" * 90_000)  # 12 x 90 KB: the range passes 1 MB
    for n in range(30):
        put(table, "p", f"TASK#{n:04d}", blob="t" * (120_000 if n % 7 == 0 else 10))
    put(table, "p", "A", note="before every family")
    put(table, "q", "STATE#0001")
    values = {":s": {"S": "STATE#"}, ":t": {"S": "TASK#"}, ":u": {"S": "STATE$"}, ":m": {"S": "STATE#0005"},
              ":x": {"S": "TASK#0029"}, ":z": {"S": "ZZZ"}}
    conditions = ["", "AND SK BETWEEN :s AND :u", "AND begins_with(SK, :t)", "AND begins_with(SK, :z)", "AND SK > :m",
                  "AND SK >= :m", "AND SK < :m", "AND SK <= :x", "AND SK = :m", "AND SK BETWEEN :u AND :s"]

    def pages(lean: bool, condition: str, forward: bool, limit: int | None) -> list:
        monkeypatch.setattr(embedded_dynamodb, "_lean", lean)
        seen, start = [], None
        for _ in range(100):
            request = {"TableName": TABLE, "KeyConditionExpression": f"PK = :p {condition}", "ScanIndexForward": forward,
                       "ExpressionAttributeValues": {":p": {"S": "p"}, **{k: v for k, v in values.items() if k in condition}}}
            if limit:
                request["Limit"] = limit
            if start:
                request["ExclusiveStartKey"] = start
            page = table.query(**request)
            start = page.get("LastEvaluatedKey")
            seen.append(([i["SK"]["S"] for i in page["Items"]], page["Count"], page["ScannedCount"], start))
            if not start:
                return seen
        raise AssertionError("no last page")

    answered = []
    lean_answer = embedded_dynamodb._key_range_query

    def counted(*args, **kwargs):
        answer = lean_answer(*args, **kwargs)
        answered.append(answer is not None)
        return answer

    monkeypatch.setattr(embedded_dynamodb, "_key_range_query", counted)
    compared = 0
    for condition in conditions:
        for forward in (True, False):
            for limit in (None, 1, 5, 12, 13, 30):
                assert pages(True, condition, forward, limit) == pages(False, condition, forward, limit), \
                    (condition, forward, limit)
                compared += 1
    assert compared == 120
    assert answered and all(answered)  # every lean page was answered from its key range, none by moto's walk


def _validated(case, walks_of_moto, monkeypatch):
    """One update expression validated and applied to a copy of its item, by the quick walk or by
    moto's own (`walks_of_moto`): the item's attributes after it, or the error it raised."""
    import copy

    from moto.dynamodb.parsing.executors import UpdateExpressionExecutor
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    ast, names, values, item, table = case
    item = copy.deepcopy(item)
    with monkeypatch.context() as patched:
        if walks_of_moto:
            for owner, name in _QUICK_WALKS():
                patched.setattr(owner, name, getattr(owner, name).moto)
        try:
            validated = UpdateExpressionValidator(copy.deepcopy(ast), expression_attribute_names=names,
                                                  expression_attribute_values=values, item=item, table=table).validate()
            validated.normalize()
            UpdateExpressionExecutor(validated, item, names).execute()
        except Exception as error:  # the error is the outcome compared
            return "error", type(error).__name__, str(error)
    return "item", item.to_json()


def _QUICK_WALKS():
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node

    return [(DepthFirstTraverser, "traverse_node_recursively"), (Node, "find_clauses"),
            (validators.ExpressionAttributeResolvingProcessor, "pre_processing_of_child"),
            (validators.ActionCountValidator, "traverse")]


def test_quick_update_validation_gives_motos_items_and_errors(api, table, monkeypatch):
    """quick_update_validation (the local run's server, the in-process tiers) walks an update
    expression's tree remembering what it asked of each node class: every update a journey through
    the API makes (starts, ends with a cascade, transitions, extension PUTs and merges, an
    association, an expiration) and hand-written ones that moto refuses (two clauses of a kind,
    overlapping paths, a key attribute, a missing path, a type mismatch, an empty key value, a
    list_append on nothing) give the same item, or the same error, as moto's own walk."""
    import copy

    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    for owner, name in _QUICK_WALKS():
        assert getattr(getattr(owner, name), "moto", None) is not None  # the quick walk is on
    cases = []
    original_init = UpdateExpressionValidator.__init__

    def keep(self, expression, expression_attribute_names, expression_attribute_values, item, table):
        cases.append((copy.deepcopy(expression), expression_attribute_names, expression_attribute_values,
                      copy.deepcopy(item), table))
        original_init(self, expression, expression_attribute_names, expression_attribute_values, item, table)

    monkeypatch.setattr(UpdateExpressionValidator, "__init__", keep)
    sid = api.post("/services/start", {"customer_id": "walk", "service_type": "t", "note": {"a": [1, "ü"]}}).json["service_id"]
    api.post(f"/services/{sid}/states/start", {"state_type": "s", "k": 1})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 1})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "u"})
    api.post(f"/services/{sid}/tasks/1/end", {"disposition": "done", "z": True})
    api.post(f"/services/{sid}/states/transition", {"from": {"state_id": 1}, "to": {"state_type": "s2"}})
    api.put(f"/services/{sid}/extensions/note", {"b": 2})
    api.put(f"/services/{sid}/extensions/note/merge", {"a": None, "c": {"d": 1}})
    api.put(f"/services/{sid}/states/2/extensions/k/merge", {"x": 1})
    api.post(f"/customers/other/services/{sid}", {"service_type": "t2"})
    api.put(f"/services/{sid}", {"ttl": 3600})
    assert api.post(f"/services/{sid}/end", {"disposition": 3}).status == 204
    monkeypatch.setattr(UpdateExpressionValidator, "__init__", original_init)
    journey = len(cases)
    assert journey >= 10, journey

    model = next(iter(cases))[4]
    item = Item(DynamoType({"S": "pk"}), DynamoType({"S": "sk"}), {
        "PK": {"S": "pk"}, "SK": {"S": "sk"}, "n": {"N": "1"}, "s": {"S": "text"}, "l": {"L": [{"N": "1"}, {"N": "2"}]},
        "m": {"M": {"x": {"N": "1"}}}, "ss": {"SS": ["a", "b"]}})
    values = {":one": {"N": "1"}, ":v": {"S": "v"}, ":l": {"L": [{"N": "3"}]}, ":ss": {"SS": ["a"]}, ":empty": {"S": ""}}
    names = {"#a": "a", "#m": "m"}
    for text in ["SET a = :v, a = :v", "SET a = :v SET b = :v", "ADD n :one REMOVE s ADD n :one", "SET PK = :v",
                 "SET a = nope + :one", "SET l2 = list_append(nope, :l)", "SET l = list_append(l, :l)",
                 "SET #a = if_not_exists(#a, :v), #m.x = :one, m.y = m.x + :one", "REMOVE l[1], l[0]",
                 "ADD ss :ss", "DELETE ss :ss", "SET n = n - :one", "SET GSI1PK = :empty", "ADD s :one",
                 "SET m.x.y = :v", "REMOVE m.x, m", "SET l[5] = :one", "SET n = :v ADD n :one",
                 "SET a = :v ADD n :one SET b = :v ADD y :one", "REMOVE a SET b = :v REMOVE c SET d = :v",
                 "SET b = :v REMOVE a, c ADD n :one DELETE ss :ss"]:
        cases.append((UpdateExpressionParser.make(text), names, values, item, model))
    outcomes = []
    for case in cases:
        quick, motos = _validated(case, False, monkeypatch), _validated(case, True, monkeypatch)
        assert quick == motos, case
        outcomes.append(quick[0])
    assert outcomes[:journey] == ["item"] * journey  # the journey's updates were all applied
    assert outcomes[journey:].count("error") >= 10  # and moto refuses most of the hand-written ones
