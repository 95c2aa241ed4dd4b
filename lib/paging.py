"""The one paging-token codec: opaque, signed, and bound to the query it continues.

A token is base64url(JSON {"k": resume key, "q": fingerprint}) + "." + HMAC-SHA256. The fingerprint
covers the tenant and every parameter that shapes the result set, so a token replayed against
another tenant, route or filter is refused (400) instead of silently skipping or leaking rows.
Tokens are signed with the current paging key and accepted with any key lib.paging_keys still
honours (the previous one for a grace period after a rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from lib import paging_keys
from lib.errors import ValidationError


def fingerprint(*parts: Any) -> str:
    """Short digest of everything that defines a result set."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _sign(key: bytes, payload: bytes) -> str:
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _signed_with_any(keys: paging_keys.Keys | None, payload: bytes, signature: str) -> bool:
    # bytes: any text compares
    return keys is not None and any(hmac.compare_digest(signature.encode(), _sign(key, payload).encode())
                                    for key in keys.verifying)


def encode(resume_key: dict[str, Any], query_fingerprint: str) -> str:
    """Token that resumes the query identified by `query_fingerprint` after `resume_key`."""
    payload = json.dumps({"k": resume_key, "q": query_fingerprint}, separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_sign(paging_keys.source().keys().signing, payload)}"


def decode(token: str | None, query_fingerprint: str) -> dict[str, Any] | None:
    """The resume key of a token made by :func:`encode` for this same query; 400 otherwise."""
    if token is None:
        return None
    try:
        body, signature = token.split(".", 1)
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        source = paging_keys.source()
        # A key rotated in another environment first: fetch the keys again (rate-limited) before refusing.
        valid = _signed_with_any(source.keys(), payload, signature) or _signed_with_any(source.refresh(), payload,
                                                                                          signature)
        data = json.loads(payload) if valid else None
    except (ValueError, UnicodeError, TypeError):
        data = None
    if not isinstance(data, dict) or data.get("q") != query_fingerprint or not isinstance(data.get("k"), dict):
        raise ValidationError("page_token: not a token issued for this query")
    key: dict[str, Any] = data["k"]
    return key
