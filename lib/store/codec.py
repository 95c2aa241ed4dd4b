"""DynamoDB attribute values <-> plain Python values, directly.

boto3's TypeSerializer / TypeDeserializer go through Decimal and a dispatch per value; reading a page
of items that way cost about three times what this direct codec costs. The project stores only
strings, integers, booleans, maps and lists (attached data is kept as JSON text), so numbers come back
as ``int`` (a stored fraction, which the project never writes, would come back as ``float``).

Every read decodes every attribute it keeps of every item, and every write encodes every value, so
the common types (strings, integers) are handled inline, before any other dispatch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _number(text: str) -> int | float:
    """A stored number: DynamoDB writes integers as plain digits (an optional minus sign)."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _map(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: decode(item) for key, item in raw.items()}


def _list(raw: list[Any]) -> list[Any]:
    return [decode(item) for item in raw]


def _same(raw: Any) -> Any:
    return raw


def _null(_raw: Any) -> None:
    return None


def _numbers(raw: list[str]) -> list[int | float]:
    return [_number(n) for n in raw]


# The other attribute types, by their tag (strings and numbers are decoded before this is looked at).
_DECODERS: dict[str, Callable[[Any], Any]] = {"M": _map, "L": _list, "BOOL": _same, "NULL": _null, "SS": list, "NS": _numbers, "S": _same,
             "N": _number}


def _unsupported(kind: str) -> ValueError:
    return ValueError(f"unsupported attribute type {kind}")


def decode(value: dict[str, Any]) -> Any:
    """One attribute value -> Python (an attribute value holds exactly one tag)."""
    for kind, raw in value.items():
        if kind == "S":
            return raw
        if kind == "N":
            return int(raw) if raw.isdigit() else _number(raw)
        decoder = _DECODERS.get(kind)
        if decoder is None:
            raise _unsupported(kind)
        return decoder(raw)
    raise _unsupported("(none)")


def decode_item(item: dict[str, Any] | None, names: frozenset[str] | None = None) -> dict[str, Any] | None:
    """A stored item -> a dict of Python values (None stays None); with `names`, only those
    attributes (what the reader uses: a service item also carries its index keys and the events of
    its last write, which a read of the service never looks at)."""
    if item is None:
        return None
    decoded: dict[str, Any] = {}
    for key, value in item.items():
        if names is not None and key not in names:
            continue
        text = value.get("S")  # strings and numbers, most of what is stored, looked up first
        if text is not None:
            decoded[key] = text
            continue
        number = value.get("N")
        if number is not None:
            decoded[key] = int(number) if number.isdigit() else _number(number)
            continue
        decoded[key] = decode(value)
    return decoded


def decode_fields(item: dict[str, Any], fields: list[tuple[str, int, Any]]) -> dict[str, Any]:
    """The values of `fields` (name, how its default is had, the default) of a stored item, in their
    order: decoded when stored; when absent, left out (how 0), the default itself (how 1), or what
    the default makes (how 2: called). What an entity of lib.store.items holds."""
    values: dict[str, Any] = {}
    for name, how, default in fields:
        value = item.get(name)
        if value is None:
            if how == 1:
                values[name] = default
            elif how == 2:
                values[name] = default()
            continue
        text = value.get("S")  # strings and numbers, most of what is stored, looked up first
        if text is not None:
            values[name] = text
            continue
        number = value.get("N")
        if number is not None:
            values[name] = int(number) if number.isdigit() else _number(number)
            continue
        values[name] = decode(value)
    return values


def encode(value: Any) -> dict[str, Any]:
    """Python -> one attribute value (the exact types first: a write encodes every value it stores)."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int:
        return {"N": str(value)}
    exact = _ENCODERS.get(kind)
    return exact(value) if exact is not None else _encode_subclass(value)


def _encode_map(value: dict[Any, Any]) -> dict[str, Any]:
    return {"M": {str(key): encode(item) for key, item in value.items()}}


def _encode_list(value: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    return {"L": [encode(item) for item in value]}


# The other exact types (a subclass goes through _encode_subclass).
_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    bool: lambda value: {"BOOL": value}, dict: _encode_map, list: _encode_list, tuple: _encode_list,
    type(None): lambda _value: {"NULL": True}, float: lambda value: {"N": repr(value)}}


def _encode_subclass(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, dict):
        return _encode_map(value)
    if isinstance(value, (list, tuple)):
        return _encode_list(value)
    if isinstance(value, float):
        return {"N": repr(value)}
    raise TypeError(f"cannot store a {type(value).__name__}")


def encode_item(values: dict[str, Any]) -> dict[str, Any]:
    """A dict -> a stored item; None values are left out (absent, not NULL)."""
    return {key: encode(value) for key, value in values.items() if value is not None}
