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
"""

from __future__ import annotations

import copy
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
        snapshot = copy.deepcopy(before.attrs) if before is not None else None
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
        elif index_name is not None and len(conditions) == 1 and conditions[0][0] == self.hash_key_attr:
            # A local index: its partition is the base table's.
            partition = self.items.get(conditions[0][1], {})
            subset = list(partition.values()) if isinstance(partition, dict) else [partition]
        elif index_name is not None and len(conditions) == 1:
            subset = _index_partition(self, conditions[0][0], conditions[0][1])
        else:
            return original_query(self, *args, **kwargs)
        self.all_items = lambda: subset  # instance attribute: seen only by this call
        try:
            return original_query(self, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query

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
    app = WithStreams(create_backend_app("dynamodb"), create_backend_app("dynamodbstreams"))
    server = make_server(host, port, SerializedApp(app), threaded=True)
    threading.Thread(target=server.serve_forever, name="embedded-dynamodb", daemon=True).start()
    return server, f"http://{host}:{server.server_port}"
