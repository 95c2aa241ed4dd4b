"""The HTTP verbs of every test client (in-process, over HTTP, the benchmark's timed one): each
defines `request(method, path, body=None, headers=None, ...)`. Imports nothing of the project."""

from __future__ import annotations

from typing import Any


class Verbs:
    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        raise NotImplementedError

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)
