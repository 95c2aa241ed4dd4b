"""Viewer function: the journey viewer's static files (contract §9) at /viewer/, and its settings.

The files hold no data and need no credentials (template.yaml: Authorizer NONE on /viewer and
/viewer/{proxy+}); every datum the page shows it reads from the API with the person's own
credentials. This function has no access to the table, the paging secret or anything else: it
imports nothing of lib/ and its role only writes its own logs.

`/viewer/config.json` tells the page how to sign in, from the function's environment:
`VIEWER_SIGN_IN` = `cognito` (deployed with the template's user pool: VIEWER_REGION,
VIEWER_USER_POOL_ID, VIEWER_CLIENT_ID, VIEWER_IDENTITY_POOL_ID), `keys` (deployed without it: the
person pastes AWS credentials), or, in the local run, `open`, `principal` (AUTH=on), `sigv4`
(AUTH=sigv4, fixed test keys) or `cognito` (AUTH=cognito: the local stand-in of the user pool and
identity pool, at VIEWER_COGNITO_ENDPOINTS).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

FILES = Path(__file__).resolve().parent.parent / "viewer"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
SIGN_IN_MODES = ("open", "principal", "sigv4", "keys", "cognito")


def _error(status: int, message: str, exception: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"message": message, "exception": exception})}


def settings() -> dict[str, Any]:
    """What the page needs to sign in (no secret: ids of the user pool and identity pool are public)."""
    mode = os.environ.get("VIEWER_SIGN_IN", "").strip() or "open"
    if mode not in SIGN_IN_MODES:
        mode = "open"
    config: dict[str, Any] = {"sign_in": mode, "region": os.environ.get("VIEWER_REGION") or
                              os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
    if mode == "cognito":
        config["cognito"] = {"user_pool_id": os.environ.get("VIEWER_USER_POOL_ID", ""),
                             "client_id": os.environ.get("VIEWER_CLIENT_ID", ""),
                             "identity_pool_id": os.environ.get("VIEWER_IDENTITY_POOL_ID", "")}
        endpoints = os.environ.get("VIEWER_COGNITO_ENDPOINTS", "").strip()
        if endpoints:  # the local run's stand-in (AUTH=cognito): two URLs or paths, user pools then identity pools
            config["cognito"]["endpoints"] = endpoints.split()
    return config


def _security_headers(config: dict[str, Any]) -> dict[str, str]:
    connect = ["'self'"]
    if config["sign_in"] == "cognito":
        cognito = config["cognito"]
        endpoints = cognito.get("endpoints") or [f"https://cognito-idp.{config['region']}.amazonaws.com",
                                                 f"https://cognito-identity.{config['region']}.amazonaws.com"]
        connect += [e for e in endpoints if e.startswith(("https://", "http://"))]  # a path is the page's own origin
    return {
        # Nothing from any other host: scripts, styles and data are the page's own (§9, no CDN).
        "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                    f"connect-src {' '.join(connect)}; form-action 'self'; base-uri 'none'; "
                                    "frame-ancestors 'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method = (event.get("httpMethod") or "GET").upper()
    if method not in ("GET", "HEAD"):
        return _error(405, f"{method} is not allowed on the viewer's files: use GET", "MethodNotAllowedException")
    path = event.get("path") or "/viewer"
    proxy = (event.get("pathParameters") or {}).get("proxy")
    if proxy is None and not path.endswith("/"):
        # /viewer -> /viewer/ (relative, so it keeps any stage prefix): the page's relative links need it.
        return {"statusCode": 301, "headers": {"Location": "viewer/", "Content-Type": "text/plain"}, "body": ""}
    name = unquote(proxy or "index.html")
    config = settings()
    headers = _security_headers(config)
    if name == "config.json":
        return {"statusCode": 200, "headers": {**headers, "Content-Type": "application/json"},
                "body": json.dumps(config)}
    file = (FILES / name).resolve()
    if (any(part.startswith(".") for part in Path(name).parts) or FILES not in file.parents
            or file.suffix not in CONTENT_TYPES or not file.is_file()):
        return _error(404, f"the viewer has no file {name!r}", "NotFoundException")
    body = file.read_text(encoding="utf-8")
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    headers.update({"Content-Type": CONTENT_TYPES[file.suffix], "ETag": etag})
    request_headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if request_headers.get("if-none-match") == etag:
        return {"statusCode": 304, "headers": headers, "body": ""}
    return {"statusCode": 200, "headers": headers, "body": "" if method == "HEAD" else body}


# In the source tree, handlers/__init__.py pauses the collector while a handler imports; the viewer's
# own package has a marker of its own instead (Makefile, build-ViewerFunction): resume it either way.
gc.enable()
