"""Strict JSON (§1, RFC 8259): what Python's json module accepts beyond it is refused with a 400 that
says why, before any model sees the body: NaN / Infinity, numbers beyond a 64-bit float, lone
surrogates, nesting deeper than 64 levels (which would otherwise exhaust the parser's recursion), and
an object that names a member twice (json keeps the last one silently; RFC 8259 leaves the outcome
open, the contract refuses it), at any depth: every body of every route is parsed here, attached data,
extension values and composite elements included."""

from __future__ import annotations

import json
import math
from typing import Any

from lib.errors import ValidationError

MAX_DEPTH = 64


def _depth_problem(text: str) -> bool:
    """Whether brackets nest deeper than MAX_DEPTH outside strings (a linear scan, no recursion).
    A body with no more opening brackets than that cannot (counted first, at C speed)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _constant(name: str) -> Any:
    raise ValidationError(f"body: {name} is not valid JSON (RFC 8259)")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValidationError(f"body: the number {text[:30]} is beyond what a 64-bit float holds")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 308:
        raise ValidationError(f"body: the number {text[:30]}... is beyond what a 64-bit float holds")
    return int(text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when it names a member twice (names compare after unescaping:
    "a" and "\\u0061" are the same member)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                shown = json.dumps(name)  # escaped: a name may hold anything, lone surrogates included
                shown = shown if len(shown) <= 80 else shown[:77] + '..."'
                raise ValidationError(f"body: the member {shown} appears more than once in one object")
            seen.add(name)
    return result


def _check_text(value: Any) -> None:
    """No lone surrogates anywhere (keys and strings): they are not Unicode text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError("body: a string holds a lone surrogate (\\ud800-\\udfff), which is not text") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# json.loads(text, parse_constant=..., ...) makes a decoder at every call: made once instead.
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float, parse_int=_int, object_pairs_hook=_object)


def strict_loads(text: str | bytes) -> Any:
    """Parse a request body as strict JSON; ValidationError (400) naming the problem otherwise."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("body: request body is not UTF-8 JSON") from None
    if _depth_problem(text):
        raise ValidationError(f"body: JSON nested deeper than {MAX_DEPTH} levels")
    try:
        value = _DECODER.decode(text)
    except ValidationError:
        raise
    except (ValueError, RecursionError):
        raise ValidationError("body: request body is not valid JSON") from None
    if "\\u" in text or not _is_text(text):
        _check_text(value)  # only an escape, or the text itself, can put a lone surrogate in a value
    return value


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
