"""DynamoDB attribute values <-> plain Python values, directly.

boto3's TypeSerializer / TypeDeserializer go through Decimal and a dispatch per value; reading a page
of items that way cost about three times what this direct codec costs. The project stores only
strings, integers, booleans, maps and lists (attached data is kept as JSON text), so numbers come back
as ``int`` (a stored fraction, which the project never writes, would come back as ``float``).
"""

from __future__ import annotations

from typing import Any


def decode(value: dict[str, Any]) -> Any:
    """One attribute value -> Python. Strings and numbers, most of what is stored, are looked up
    first (a read decodes every attribute of every item it returns)."""
    text = value.get("S")
    if text is not None:
        return text
    number = value.get("N")
    if number is not None:
        return _number(number)
    kind, raw = next(iter(value.items()))
    if kind == "M":
        return {key: decode(item) for key, item in raw.items()}
    if kind == "L":
        return [decode(item) for item in raw]
    if kind == "BOOL":
        return raw
    if kind == "NULL":
        return None
    if kind == "SS":
        return list(raw)
    if kind == "NS":
        return [_number(n) for n in raw]
    raise ValueError(f"unsupported attribute type {kind}")


def _number(text: str) -> int | float:
    """A stored number: DynamoDB writes integers as plain digits (an optional minus sign)."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


def decode_item(item: dict[str, Any] | None, names: frozenset[str] | None = None) -> dict[str, Any] | None:
    """A stored item -> a dict of Python values (None stays None); with `names`, only those
    attributes (what the reader uses: a service item also carries its index keys and the events of
    its last write, which a read of the service never looks at)."""
    if item is None:
        return None
    if names is None:
        return {key: decode(value) for key, value in item.items()}
    return {key: decode(value) for key, value in item.items() if key in names}


def encode(value: Any) -> dict[str, Any]:
    """Python -> one attribute value (the exact types first: a write encodes every value it stores)."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int:
        return {"N": str(value)}
    if kind is bool:
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {str(key): encode(item) for key, item in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [encode(item) for item in value]}
    if value is None:
        return {"NULL": True}
    if isinstance(value, float):
        return {"N": repr(value)}
    raise TypeError(f"cannot store a {type(value).__name__}")


def encode_item(values: dict[str, Any]) -> dict[str, Any]:
    """A dict -> a stored item; None values are left out (absent, not NULL)."""
    return {key: encode(value) for key, value in values.items() if value is not None}
