"""Source: a running Context Services, through its export stream with content (§8):
`GET <base>/maintenance/services/stream?time_from=…&time_to=…&export_content=true&limit=…`, page by
page, following `Link: <…>; rel="next"`. Each page's services come with all their states, tasks and
attached data. The position (the checkpoint) is the URL of the next page to read.

The window is fixed when the import starts (`time_to` defaults to that moment, kept in the
checkpoint), so a resumed import reads the same services; what starts later is for the next run.
Requests carry the source's tenancy headers; requests to this project's deployed API (an
execute-api host) are signed with SigV4 from the standard AWS credential chain (botocore).
Throttling (429) and server errors are retried with a growing pause; any other error stops the
import with the source's message.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from lib.migration.records import Part, split_embedded
from lib.migration.source import Batch, SourceError
from lib.store import imported

BASE_PATH = "/genesys/1/cs"
EXECUTE_API = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')
ATTEMPTS = 6
TIMEOUT_S = 60
Signer = Callable[[str, str, dict[str, str]], dict[str, str]]


def sigv4_signer(url: str, region: str | None = None, profile: str | None = None) -> Signer:
    """Signs requests to API Gateway (SigV4, `execute-api`) with the standard credential chain."""
    try:
        signer: Signer = imported.execute_api_signer(region, profile, urlsplit(url).hostname or "")
        return signer
    except imported.SourceUnreadable as error:
        raise SourceError(str(error)) from None


def is_deployed_api(url: str) -> bool:
    return bool(EXECUTE_API.search(urlsplit(url).hostname or ""))


@dataclass
class StreamSource:
    """Reads the export stream of a running Context Services (see the module doc)."""

    base_url: str  # ending in /genesys/1/cs
    time_from: str
    time_to: str
    tenancy: dict[str, str] = field(default_factory=dict)  # ContactCenterId / GroupId of the source
    filter_events: str = "any"
    signer: Signer | None = None
    sleep: Callable[[float], None] = time.sleep
    total: int | None = None
    unattached: list[Part] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SourceError(f"{self.base_url}: not an http(s) URL")
        self.base_url = self.base_url.rstrip("/")
        if not self.base_url.endswith(BASE_PATH):
            self.base_url += BASE_PATH

    @property
    def description(self) -> str:
        tenancy = ", ".join(f"{k}: {v}" for k, v in self.tenancy.items()) or "default tenant"
        return f"{self.base_url} export stream [{self.time_from}, {self.time_to}) ({tenancy})"

    @property
    def identity(self) -> dict[str, Any]:
        return {"stream": self.base_url, "tenancy": self.tenancy, "time_from": self.time_from,
                "filter_events": self.filter_events}

    def first_url(self, size: int) -> str:
        query = {"time_from": self.time_from, "time_to": self.time_to, "filter_events": self.filter_events,
                 "export_content": "true", "limit": str(size)}
        return f"{self.base_url}/maintenance/services/stream?{urlencode(query)}"

    def prepare(self) -> None:
        """Nothing to stage: the stream is read as it comes."""

    def batches(self, position: dict[str, Any] | None, size: int) -> Iterator[Batch]:
        """One batch a page, from the page `position` names (its URL and number)."""
        if position is not None and position.get("url") is None:
            return
        url = position["url"] if position else self.first_url(size)
        page = position.get("page", 1) if position else 1
        while url is not None:
            items, next_url = self.page(url)
            units = [split_embedded(f"page {page} item {index + 1}", item) for index, item in enumerate(items)]
            next_url = urljoin(self.base_url, next_url) if next_url else None
            yield Batch(units, {"url": next_url, "page": page + 1})
            url, page = next_url, page + 1

    def page(self, url: str) -> tuple[list[Any], str | None]:
        """One page: its services and the Link to the next page (None: the last)."""
        headers = {"Accept": "application/json", **self.tenancy}
        for attempt in range(ATTEMPTS):
            signed = self.signer("GET", url, dict(headers)) if self.signer else headers
            request = urllib.request.Request(url, headers=signed, method="GET")
            self.requests += 1
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                    body = response.read()
                    link = response.headers.get("Link")
                break
            except urllib.error.HTTPError as error:
                text = error.read().decode("utf-8", "replace")
                if error.code == 429 or error.code >= 500:
                    if attempt + 1 < ATTEMPTS:
                        self.sleep(min(30.0, 2.0 ** attempt))
                        continue
                raise SourceError(f"{url}: {error.code} {_message(text)}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                if attempt + 1 < ATTEMPTS:
                    self.sleep(min(30.0, 2.0 ** attempt))
                    continue
                raise SourceError(f"{url}: {getattr(error, 'reason', error)}") from None
        else:  # pragma: no cover - the loop breaks or raises
            raise SourceError(f"{url}: no answer")
        try:
            items = json.loads(body)
        except ValueError:
            raise SourceError(f"{url}: the answer is not JSON") from None
        if not isinstance(items, list):
            raise SourceError(f"{url}: the answer is not a JSON array ({_message(body.decode('utf-8', 'replace'))})")
        found = NEXT.search(link or "")
        return items, (found.group(1) if found else None)

    def close(self) -> None:
        """Nothing to release."""


def _message(text: str) -> str:
    try:
        body = json.loads(text)
        return f"{body.get('exception', '')}: {body.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        return text[:200]
