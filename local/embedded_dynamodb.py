"""moto's DynamoDB, made to keep the guarantees the project relies on from the real service. Used
by the local run, the tests and the benchmark; never deployed.

Four gaps of moto are closed here (and its stream is served beside the table, `WithStreams`):
* moto's server runs requests concurrently and does not serialise them, so two conditional writes
  of one key can both succeed (measured: 16 parallel conditional puts of one new key let two
  through in 1 of 30 trials). `SerializedApp` puts one lock around the backend: every call is
  atomic, calls of different requests still interleave.
* moto applies an UpdateItem in place and only then finds the item too large, leaving the partial
  update stored. DynamoDB refuses the whole update. `faithful_updates` restores the item.
* moto answers every Query by sorting and walking the whole table, and backs up every table a
  transaction touches by deep-copying it, so its cost grows with the table, where DynamoDB's grows
  with the partition read or the items written. `partition_scoped` gives Query only the items of
  the partition it names (base table or index) and makes a transaction back up only the items it
  names (and, when it is cancelled, takes back the stream records of the items it had written).
  Results are unchanged (the same moto code filters, sorts and pages them); only what it has
  to look at shrinks. Without this the local run slows down as data accumulates and the benchmark's
  scaling figures would measure moto rather than the table design.

And costs of moto that are not DynamoDB's, which the local run's server (`start`) removes, the
answers unchanged (tests/test_embedded_dynamodb.py compares them with moto's own):
* moto 5.2 writes every response through a generic serializer that walks the operation's model for
  each attribute of each item (measured: 1.0 s of a 1.2 s list of 200 services), after turning its
  values into plain ones. `direct_item_responses` writes the item-reading operations' results as
  JSON at once, and does not deep-copy a Query's items first (they are written out under the lock);
  `direct_stream_records` does the same for DynamoDB Streams' GetRecords (the change feed's reads).
* moto checks an item's size limit as it builds the item, measuring all its attributes again at
  each one; `linear_item_checks` measures a built item once.
* moto's Query sorts the partition with Python comparisons, walks it from the first item and
  measures each returned item's size twice. `lean_queries` answers a base-table Query of a key
  range from exactly the items in that range (found by bisection) and measures each item once.
Measured on a page of 1,000 states: the embedded DynamoDB's CPU time fell from 140–220 ms to 60–90 ms.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

_patched = False
_scoped = False


class SerializedApp:
    """WSGI middleware: one request at a time into the wrapped app (moto's DynamoDB backend)."""

    def __init__(self, app: Callable):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


def faithful_updates() -> None:
    """Make moto's UpdateItem all-or-nothing when the result would exceed the item size limit."""
    global _patched
    if _patched:
        return
    from moto.dynamodb.exceptions import ItemSizeToUpdateTooLarge
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.update_item

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        table = self.get_table(table_name)
        hash_value, range_value = self.get_keys_value(table, key)
        before = table.get_item(hash_value, range_value)
        # The item's own deep copy (moto's Item.__deepcopy__): a copy of its attribute dict alone goes
        # through the dict's __setitem__, which measures the whole item again at every attribute.
        snapshot = copy.deepcopy(before).attrs if before is not None else None
        try:
            return original(self, table_name, key, *args, **kwargs)
        except ItemSizeToUpdateTooLarge:
            if before is not None:
                before.attrs = snapshot
            raise

    DynamoDBBackend.update_item = update_item
    _patched = True


def serialized_in_process() -> None:
    """In-process moto (tests, benchmark) runs concurrent calls of one process concurrently too, and
    its backend is not thread-safe: one lock around each mocked request, as SerializedApp does for
    the server."""
    from moto.core.botocore_stubber import BotocoreStubber

    if getattr(BotocoreStubber.process_request, "_serialized", False):
        return
    original = BotocoreStubber.process_request
    lock = threading.RLock()

    def process_request(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    process_request._serialized = True  # type: ignore[attr-defined]
    BotocoreStubber.process_request = process_request


def partition_scoped() -> None:
    """Make moto's Query and TransactWriteItems cost what DynamoDB's cost (see module doc)."""
    global _scoped
    serialized_in_process()
    if _scoped:
        return
    import inspect

    import moto.dynamodb.models as backend_module
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original_query = Table.query
    signature = inspect.signature(original_query)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        index_name = bound.arguments.get("index_name")
        conditions = bound.arguments.get("hash_key_conditions") or []
        if index_name is None and bound.arguments.get("hash_key") is not None:
            partition = self.items.get(bound.arguments["hash_key"], {})
            subset = list(partition.values()) if isinstance(partition, dict) else [partition]
            if _lean:
                answer = _key_range_query(self, subset, bound.arguments, original_query)
                if answer is not None:
                    return answer
        elif index_name is not None and len(conditions) == 1 and conditions[0][0] == self.hash_key_attr:
            # A local index: its partition is the base table's.
            partition = self.items.get(conditions[0][1], {})
            subset = list(partition.values()) if isinstance(partition, dict) else [partition]
        elif index_name is not None and len(conditions) == 1:
            subset = _index_partition(self, conditions[0][0], conditions[0][1])
        else:
            return original_query(self, *args, **kwargs)
        global _sizes
        self.all_items = lambda: subset  # instance attribute: seen only by this call
        _sizes = {} if _lean else None
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _sizes = None
            del self.all_items

    Table.query = query
    _measure_sizes_once()

    def _index_partition(table: Any, attribute: str, value: Any) -> list[Any]:
        cache = table.__dict__.get("_partition_cache")
        generation = table.__dict__.get("_generation", 0)
        if cache is None or cache[0] != generation:
            names = {key["AttributeName"] for index in table.global_indexes for key in index.schema
                     if key["KeyType"] == "HASH"}
            groups: dict[tuple[str, Any], list[Any]] = {}
            for item in Table.all_items(table):
                for name in names:
                    if name in item.attrs:
                        groups.setdefault((name, item.attrs[name]), []).append(item)
            cache = (generation, groups)
            table.__dict__["_partition_cache"] = cache
        return cache[1].get((attribute, value), [])

    def bump(method: Callable) -> Callable:
        def wrapped(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, table_name, *args, **kwargs)
            finally:
                table = self.tables.get(table_name)
                if table is not None:
                    table.__dict__["_generation"] = table.__dict__.get("_generation", 0) + 1
        return wrapped

    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, bump(getattr(DynamoDBBackend, name)))

    class _NoTableCopies:
        """Stands in for the `copy` module inside moto's backend: tables are not deep-copied
        (transactions back up their own items instead, below); everything else is."""

        @staticmethod
        def deepcopy(value: Any, *args: Any) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, *args)

    backend_module.copy = _NoTableCopies
    original_transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        # moto writes a transaction's items one by one, each adding its stream record: a cancelled
        # transaction must take its records back too (moto's own roll-back restores whole tables,
        # stream included), or the stream would show changes that never happened.
        streams: dict[int, tuple[Any, int]] = {}
        for entry in transact_items:
            action = next(iter(entry.values()))
            table = self.get_table(action["TableName"])
            if table.stream_shard is not None:
                streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
            key = action.get("Key") or {name: action["Item"][name] for name in (table.hash_key_attr, table.range_key_attr)
                                        if name}
            hash_value, range_value = self.get_keys_value(table, key)
            saved.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        try:
            return original_transact(self, transact_items)
        except Exception:
            for table, hash_value, range_value, before in reversed(saved):
                partition = table.items.setdefault(hash_value, {})
                if before is None:
                    partition.pop(range_value, None)
                else:
                    partition[range_value] = before
                table.__dict__["_generation"] = table.__dict__.get("_generation", 0) + 1
            for shard, length in streams.values():
                del shard.items[length:]
            raise

    DynamoDBBackend.transact_write_items = transact_write_items
    _scoped = True


_lean = False
_sizes: dict[int, int] | None = None  # while a lean Query runs: each item's size, measured once
_EXACT = {"EQ", "=", "LT", "<", "LE", "<=", "GT", ">", "GE", ">=", "BETWEEN", "BEGINS_WITH"}
_MAX_ITEM = 400 * 1024


def lean_queries() -> None:
    """Make a base-table Query of a key range cost what it returns (the local run's server; see
    `_key_range_query`): the answer is moto's own, items, counts and LastEvaluatedKey alike
    (tests/test_embedded_dynamodb.py compares them)."""
    global _lean
    partition_scoped()
    _lean = True


def _measure_sizes_once() -> None:
    """moto measures an item's size twice for each item a Query returns (for the 1 MB page limit),
    walking every attribute each time; with lean_queries, a Query measures each item once (no
    write can change an item during a call: one call at a time)."""
    from moto.dynamodb.models.dynamo_type import Item

    measure = Item.size

    def size(self: Any) -> int:
        if _sizes is None:
            return measure(self)
        known = _sizes.get(id(self))
        if known is None:
            known = _sizes[id(self)] = measure(self)
        return known

    Item.size = size


def _key_range_query(table: Any, partition: list[Any], arguments: dict[str, Any], moto_query: Callable) -> Any:
    """A base-table Query over one partition, answered by moto from the items in its key range only.

    moto sorts the whole partition with Python comparisons, walks it from its first item (also the
    items before ExclusiveStartKey) and compares each sort key with the condition (measured: a third
    of a 1,000-state page). Here the partition is sorted by the sort key's value once, the key range
    (and the part after ExclusiveStartKey) is found by bisection, and moto answers from exactly those
    items with no key condition left to check. One thing of moto's answer depends on the items
    beyond the range: it gives a LastEvaluatedKey when its walk meets any further item with the page
    full (Limit reached, or the 1 MB limit passed with that item); that is reproduced below. None
    (moto answers as usual) for what this does not cover: another comparison, several key
    conditions, or legacy KeyConditions filters."""
    import bisect

    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    global _sizes
    comparison = arguments.get("range_comparison")
    values = arguments.get("range_objs") or []
    conditions = arguments.get("range_key_conditions") or []
    start_key = arguments.get("exclusive_start_key")
    name = table.range_key_attr
    if (name is None or arguments.get("filter_kwargs") or len(conditions) > 1
            or (conditions and conditions[0][0] != name) or (comparison is not None and comparison not in _EXACT)):
        return None
    if start_key is not None and (name not in start_key or table.hash_key_attr not in start_key
                                  or DynamoType(start_key[table.hash_key_attr]) != arguments["hash_key"]):
        return None
    items = sorted(partition, key=lambda item: item.range_key.cast_value)
    keys = [item.range_key.cast_value for item in items]
    low, high = 0, len(items)
    bounds = [value.cast_value for value in values]
    if comparison in ("EQ", "="):
        low, high = bisect.bisect_left(keys, bounds[0]), bisect.bisect_right(keys, bounds[0])
    elif comparison in ("LT", "<"):
        high = bisect.bisect_left(keys, bounds[0])
    elif comparison in ("LE", "<="):
        high = bisect.bisect_right(keys, bounds[0])
    elif comparison in ("GT", ">"):
        low = bisect.bisect_right(keys, bounds[0])
    elif comparison in ("GE", ">="):
        low = bisect.bisect_left(keys, bounds[0])
    elif comparison == "BETWEEN":
        low, high = bisect.bisect_left(keys, bounds[0]), max(bisect.bisect_right(keys, bounds[1]), low)
    elif comparison == "BEGINS_WITH":
        if not isinstance(bounds[0], str):
            return None
        low = high = bisect.bisect_left(keys, bounds[0])
        while high < len(keys) and isinstance(keys[high], str) and keys[high].startswith(bounds[0]):
            high += 1
    forward = arguments.get("scan_index_forward") is not False
    if start_key is not None:
        after = DynamoType(start_key[name]).cast_value
        if forward:
            low = max(low, bisect.bisect_right(keys, after))
        else:
            high = min(high, bisect.bisect_left(keys, after))
    beyond = items[high:] if forward else items[:max(low, 0)][::-1]
    chosen = items[low:high] if low < high else []
    call = {**arguments, "range_comparison": None, "range_objs": [], "range_key_conditions": None,
            "exclusive_start_key": None}
    extra = call.pop("filter_kwargs", {})
    table.all_items = lambda: chosen  # instance attribute: seen only by this call
    _sizes = {}
    try:
        results, scanned, last = moto_query(**call, **extra)
        if last is None and results and beyond:
            size = sum(item.size() for item in results)
            limit = arguments.get("limit")
            if (limit is not None and len(results) == limit) or (
                    size + _MAX_ITEM > RESULT_SIZE_LIMIT and any(size + b.size() > RESULT_SIZE_LIMIT for b in beyond)):
                last = table._get_last_evaluated_key(results[-1], None)
        return results, scanned, last
    finally:
        _sizes = None
        del table.all_items


_direct = False
ITEM_READS = ("Query", "GetItem", "BatchGetItem", "Scan")


def _wire(value: Any) -> Any:
    """json.dumps' hook for what moto keeps in its results: an attribute value as DynamoDB writes it."""
    import base64

    from moto.dynamodb.models.dynamo_type import DynamoType

    if isinstance(value, DynamoType):
        if value.type == "B" and isinstance(value.value, bytes):
            return {"B": base64.b64encode(value.value).decode("ascii")}
        if value.type == "BS":
            return {"BS": [base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for v in value.value]}
        return {value.type: value.value}
    if isinstance(value, (bytes, bytearray)):  # a result moto has already made plain holds binaries raw
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not an attribute value")


def item_read_json(result: Any) -> str:
    """The JSON body DynamoDB sends for an item read's result (moto's, with its values still moto's
    DynamoType objects, or already made plain)."""
    import json

    return json.dumps(result, default=_wire)


def direct_item_responses() -> None:
    """Answer Query, GetItem, BatchGetItem and Scan with their result written as JSON at once, not
    turned into plain values first and then through moto's generic response serializer (see module
    doc): the same answer, several times sooner for a page."""
    global _direct
    if _direct:
        return
    import moto.dynamodb.models.table as table_module
    from moto.core.responses import ActionResult
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.utilities import dynamo_to_dict
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result

    def keep(self: Any, result: object) -> None:
        ActionResult.__init__(self, result)  # as moto found it: made plain only if another writer needs it

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name in ITEM_READS:
            return 200, {}, item_read_json(self._result)
        self._result = dynamo_to_dict(self._result)
        return original(self, context)

    DynamoResult.__init__ = keep
    DynamoResult.execute_result = execute_result

    class _QueryResultsUncopied:
        """Stands in for the `copy` module inside moto's table module. Query deep-copies the items it
        found before answering (measured: 190 ms of a 450 ms Query of 1,000 states); here the list is
        copied, not the items: the response writes them out at once, under SerializedApp's lock,
        before any write can change them, and the projections make new items. Every other copy
        (single items, tables for backups) is made as before."""

        copy = staticmethod(copy.copy)

        @staticmethod
        def deepcopy(value: Any, *args: Any) -> Any:
            if isinstance(value, list) and all(isinstance(item, Item) for item in value):
                return list(value)
            return copy.deepcopy(value, *args)

    table_module.copy = _QueryResultsUncopied
    _direct = True


_linear = False
LIMITED_SIZE = 405000  # moto's limit in LimitedSizeDict.__setitem__ (moto 5.2)


def linear_item_checks() -> None:
    """moto checks an item's 400 KB limit as it builds it, attribute by attribute, by measuring every
    attribute set so far again at each one (LimitedSizeDict.__setitem__): building an item of n
    attributes measures about n²/2 of them, every nested value walked each time (measured: a tenth
    of the CPU of the fault sweeps and of a page of 150 children). Here an item is built whole and
    measured once: the same outcome, since sizes are never negative, so the running sum passes the
    limit at some attribute exactly when the total does (ItemSizeTooLarge either way; compared with
    moto's own in tests/api/test_embedded_dynamodb.py). Later single-attribute sets keep moto's
    check, which measures the whole item each time: the measure itself (DynamoType.size) is made
    cheaper instead, the same numbers (compared with moto's on random values there too)."""
    global _linear
    if _linear:
        return
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    def build(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key, self.range_key = hash_key, range_key
        built = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(built, ((key, DynamoType(value)) for key, value in attrs.items()))
        # LimitedSizeDict's own measure: each key's bytes and each value's size.
        if sum(bytesize(key) + value.size() for key, value in dict.items(built)) > LIMITED_SIZE:
            raise ItemSizeTooLarge
        self.attrs = built

    def size(self: Any) -> int:
        """DynamoType.size's measure, without building a copy of every nested value to measure it
        (moto wraps each map value in a new DynamoType, whose constructor wraps its children again:
        a value nested d deep is copied d times)."""
        kind, value = self.type, self.value
        if kind == "N":
            return len(str(value))
        if kind == "M":
            return sum(bytesize(k) + size(v if type(v) is DynamoType else DynamoType(v)) for k, v in value.items())
        if kind == "L":
            return sum(size(v) for v in value)
        if kind in ("SS", "NS", "BS"):
            if kind == "NS":
                return sum(len(str(v)) for v in value)
            return sum(1 if isinstance(v, bool) else bytesize(v) for v in value)
        if isinstance(value, bool):
            return 1
        return bytesize(value)

    build.moto = Item.__init__  # type: ignore[attr-defined]
    size.moto = DynamoType.size  # type: ignore[attr-defined]
    Item.__init__ = build
    DynamoType.size = size
    _linear = True


_quick_validation = False


def quick_update_validation() -> None:
    """moto validates an update expression by walking its tree ten times (UpdateExpressionValidator's
    processors), and at every node asks `isinstance` of its node classes, which are ABCs: each such
    check runs ABCMeta.__instancecheck__, a Python frame of its own (3.4 million of them in three API
    test files, where the validator took about a fifth of the CPU under a profiler); and its clause
    count searches every subtree again at every node. Here the walk, the clause search and the
    resolving processor's hook ask each question once per node class (the answer is cached), and the
    clauses are counted in one pass: no class is registered with
    these ABCs, so whether a node is an instance of one depends on its class alone. The walk keeps
    moto's order and its choice of processor (the first class of the processor's map that the node
    is an instance of), and each processor's map is built once instead of at every node. Compared
    with moto's own walk in tests/api/test_embedded_dynamodb.py (the same items and the same errors)."""
    global _quick_validation
    if _quick_validation:
        return
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Expression, Node, UpdateExpressionFunction

    resolving = validators.ExpressionAttributeResolvingProcessor
    parents = (validators.UpdateExpressionSetAction, validators.UpdateExpressionRemoveAction,
               validators.UpdateExpressionDeleteAction, validators.UpdateExpressionAddAction)
    no_hook = DepthFirstTraverser.pre_processing_of_child
    # Each question of a class, asked once (functools.cache: one C call a node after the first).
    is_node = functools.cache(lambda kind: issubclass(kind, Node))
    descends = functools.cache(lambda kind: issubclass(kind, (Expression, UpdateExpressionFunction)))  # find_clauses'
    sets_resolving = functools.cache(lambda kind: issubclass(kind, parents))
    is_update = functools.cache(lambda kind: issubclass(kind, validators.UpdateExpression))
    hooked = functools.cache(lambda processor: processor.pre_processing_of_child is not no_hook)
    unknown = object()
    chosen: dict[tuple[type, type], Any] = {}  # (processor class, node class) -> its map's key, or None

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        kind = type(node)
        if not is_node(kind):
            return node
        parent_node = node.parent
        children = node.children
        if children is not None:
            hook = hooked(type(self))
            for i, child_node in enumerate(children):
                if hook:
                    self.pre_processing_of_child(node, i)
                self.traverse_node_recursively(child_node, i)
        mapping = self.__dict__.get("_map")
        if mapping is None:
            mapping = self.__dict__["_map"] = self._processing_map()
        key = chosen.get((type(self), kind), unknown)
        if key is unknown:
            key = chosen[(type(self), kind)] = next((c for c in mapping if issubclass(kind, c)), None)
        if key is not None:
            node = mapping[key](node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    def find_clauses(self: Any, clause_types: list[type]) -> list[Any]:
        clauses = []
        for child in self.children or ():
            kind = type(child)
            if kind in clause_types:
                clauses.append(child)
            elif descends(kind):
                clauses.extend(child.find_clauses(clause_types))
        return clauses

    def pre_processing_of_child(self: Any, parent_node: Any, child_id: int) -> None:
        if sets_resolving(type(parent_node)):
            self.resolving = child_id != 0

    counted = (validators.UpdateExpressionAddClause, validators.UpdateExpressionRemoveClause,
               validators.UpdateExpressionSetClause)
    names = ("ADD", "REMOVE", "SET")

    def count_actions(_self: Any, node: Any) -> Any:
        """ActionCountValidator's walk in one pass: moto asks each UpdateExpression node, bottom up,
        for the ADD, REMOVE and SET clauses under it (find_clauses, each time the whole subtree) and
        raises TooManyClauses at the first with two of a kind; here each node's counts are its
        children's, added once. The walk changes nothing, so only where it raises matters."""

        def walk(current: Any) -> tuple[int, int, int]:
            totals = [0, 0, 0]
            for child in current.children or ():
                kind = type(child)
                below = walk(child) if is_node(kind) else (0, 0, 0)
                for k in range(3):
                    if kind is counted[k]:
                        totals[k] += 1
                    elif descends(kind):
                        totals[k] += below[k]
            if is_update(type(current)):
                for k in range(3):
                    if totals[k] > 1:
                        raise validators.TooManyClauses(names[k])
            return totals[0], totals[1], totals[2]

        if is_node(type(node)):
            walk(node)
        return node

    for owner, name, replacement in ((DepthFirstTraverser, "traverse_node_recursively", traverse_node_recursively),
                                     (Node, "find_clauses", find_clauses),
                                     (resolving, "pre_processing_of_child", pre_processing_of_child),
                                     (validators.ActionCountValidator, "traverse", count_actions)):
        replacement.moto = getattr(owner, name)  # type: ignore[attr-defined]
        setattr(owner, name, replacement)
    _quick_validation = True


_direct_streams = False


def _record_wire(value: Any) -> Any:
    """json.dumps' hook for a stream record of moto's: its creation time as the JSON protocol writes
    a timestamp (epoch seconds, to the millisecond, by moto's own serializer), binaries in base64."""
    from datetime import datetime

    if isinstance(value, datetime):
        from botocore.utils import parse_to_aware_datetime
        from moto.core.serialize import TimestampSerializer

        return TimestampSerializer._timestamp_unixtimestamp(parse_to_aware_datetime(value))
    return _wire(value)


def stream_records_json(result: Any) -> str:
    """The JSON body DynamoDB Streams sends for moto's GetRecords result."""
    import json

    return json.dumps(result, default=_record_wire)


def direct_stream_records() -> None:
    """Answer DynamoDB Streams' GetRecords with its records written as JSON at once, not through
    moto's generic serializer, which walks the model for every attribute of both images of every
    record (measured: 1 s for one read of a few hundred records, most of a feed test's CPU). The
    same answer (tests/api/test_embedded_dynamodb.py compares them)."""
    global _direct_streams
    if _direct_streams:
        return
    from moto.core.responses import ActionResult
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    class Records(ActionResult):
        def execute_result(self, _context: Any) -> Any:
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, stream_records_json(self.result)

    get_records = DynamoDBStreamsHandler.get_records

    def records(self: Any) -> ActionResult:
        return Records(get_records(self).result)

    DynamoDBStreamsHandler.get_records = records
    _direct_streams = True


class WithStreams:
    """DynamoDB and DynamoDB Streams on one endpoint, as DynamoDB Local serves them: a request is
    routed by its X-Amz-Target (`DynamoDBStreams_20120810.GetRecords`, `DynamoDB_20120810.PutItem`).
    moto's streams read the same in-process tables."""

    def __init__(self, tables: Callable, streams: Callable):
        self.tables, self.streams = tables, streams

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        streams = environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDBStreams_")
        return (self.streams if streams else self.tables)(environ, start_response)


def start(host: str = "127.0.0.1", port: int = 0):
    """Serve moto's DynamoDB, serialised and faithful, with its streams, on a loopback port:
    (server, endpoint URL)."""
    from moto.server import create_backend_app
    from werkzeug.serving import make_server

    faithful_updates()
    partition_scoped()
    lean_queries()
    linear_item_checks()
    quick_update_validation()
    direct_item_responses()
    direct_stream_records()
    app = WithStreams(create_backend_app("dynamodb"), create_backend_app("dynamodbstreams"))
    server = make_server(host, port, SerializedApp(app), threaded=True)
    threading.Thread(target=server.serve_forever, name="embedded-dynamodb", daemon=True).start()
    return server, f"http://{host}:{server.server_port}"
