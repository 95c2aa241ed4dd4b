"""The one paging-token codec: opaque, signed, and bound to the query it continues.

A token is base64url(JSON {"k": resume key, "q": fingerprint}) + "." + HMAC-SHA256. The fingerprint
covers the tenant and every parameter that shapes the result set, so a token replayed against
another tenant, route or filter is refused (400) instead of silently skipping or leaking rows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from lib.errors import ValidationError
from lib.settings import settings


def fingerprint(*parts: Any) -> str:
    """Short digest of everything that defines a result set."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _sign(payload: bytes) -> str:
    mac = hmac.new(settings().page_token_secret.encode(), payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def encode(resume_key: dict[str, Any], query_fingerprint: str) -> str:
    """Token that resumes the query identified by `query_fingerprint` after `resume_key`."""
    payload = json.dumps({"k": resume_key, "q": query_fingerprint}, separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_sign(payload)}"


def decode(token: str | None, query_fingerprint: str) -> dict[str, Any] | None:
    """The resume key of a token made by :func:`encode` for this same query; 400 otherwise."""
    if token is None:
        return None
    try:
        body, signature = token.split(".", 1)
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        valid = hmac.compare_digest(signature.encode(), _sign(payload).encode())  # bytes: any text compares
        data = json.loads(payload) if valid else None
    except (ValueError, UnicodeError, TypeError):
        data = None
    if not isinstance(data, dict) or data.get("q") != query_fingerprint or not isinstance(data.get("k"), dict):
        raise ValidationError("page_token: not a token issued for this query")
    return data["k"]
