"""Counting the DynamoDB calls a request makes (botocore's event hooks on the project's client)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def count_calls(client: Any) -> Iterator[list[str]]:
    """The names of the API calls made through `client` while the block runs."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb.*", record)
    try:
        yield calls
    finally:
        client.meta.events.unregister("before-call.dynamodb.*", record)
