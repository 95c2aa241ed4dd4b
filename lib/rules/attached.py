"""Attached data set by key (§4, §6): the deprecated extension PUT (replace one key) and Merge
Extension Data (a JSON Merge Patch, RFC 7386, applied to one key), on services, states and tasks."""

from __future__ import annotations

import json
from typing import Any

from lib import clock
from lib.errors import ValidationError
from lib.models import attached_key_problem
from lib.rules.services import check_service_id, json_text
from lib.store import services as service_store
from lib.store import starts
from lib.store.concurrency import Write


def check_name(name: str) -> str:
    problem = attached_key_problem(name)
    if problem:
        raise ValidationError(f"ext_name: {problem}")
    return name


def put(tenant: str, service_id: str, kind: str, child_id: int | None, name: str, value: Any) -> None:
    """Replace one attached-data key of a service (kind "service") or of a state or task."""
    check_service_id(service_id)
    check_name(name)
    w = Write(tenant, clock.now_ms())
    if kind == "service":
        service_store.put_service_attached(w, service_id, name, json_text(value))
    else:
        starts.put_child_attached(w, service_id, kind, child_id, name, json_text(value))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: members of an object patch replace or add, recursively; null removes."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merged(name: str, old_text: str | None, patch: dict[str, Any]) -> str:
    old = json.loads(old_text) if old_text is not None else {}
    if not isinstance(old, dict):
        raise ValidationError(f"ext_name: the stored value of '{name}' is not a JSON object, so it cannot be merged")
    return json_text(merge_patch(old, patch))


def merge(tenant: str, service_id: str, kind: str, child_id: int | None, name: str, patch: Any) -> Any:
    """Merge Extension Data: apply `patch` (a JSON object) to one key; returns the key's new value.
    Read, merge, then a write conditional on the value read (retried if another write got in)."""
    check_service_id(service_id)
    check_name(name)
    if not isinstance(patch, dict):
        raise ValidationError("body: a merge patch must be a JSON object")
    w = Write(tenant, clock.now_ms())
    if kind == "service":
        text = service_store.merge_service_attached(w, service_id, name, lambda old: _merged(name, old, patch))
    else:
        text = starts.merge_child_attached(w, service_id, kind, child_id, name, lambda old: _merged(name, old, patch))
    return json.loads(text)
