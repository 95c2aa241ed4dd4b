"""moto's DynamoDB, made to keep the guarantees the project relies on from the real service. Used
by the local run, the tests and the benchmark; never deployed.

Two gaps of moto are closed here:
* moto's server runs requests concurrently and does not serialise them, so two conditional writes
  of one key can both succeed (measured: 16 parallel conditional puts of one new key let two
  through in 1 of 30 trials). `SerializedApp` puts one lock around the backend: every call is
  atomic, calls of different requests still interleave.
* moto applies an UpdateItem in place and only then finds the item too large, leaving the partial
  update stored. DynamoDB refuses the whole update. `faithful_updates` restores the item.
"""

from __future__ import annotations

import copy
import threading
from typing import Any
from collections.abc import Callable, Iterable

_patched = False


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


def start(host: str = "127.0.0.1", port: int = 0):
    """Serve moto's DynamoDB, serialised and faithful, on a loopback port: (server, endpoint URL)."""
    from moto.server import create_backend_app
    from werkzeug.serving import make_server

    faithful_updates()
    server = make_server(host, port, SerializedApp(create_backend_app("dynamodb")), threaded=True)
    threading.Thread(target=server.serve_forever, name="embedded-dynamodb", daemon=True).start()
    return server, f"http://{host}:{server.server_port}"
