"""Kept only for bench/ (bench/harness.py, bench/coldstart.py), which still imports it: the tests use
tests.support. Remove once bench/ imports nothing from tests/."""

from local.events import to_response  # noqa: F401
from tests.support import BASE, Api, LambdaContext, Reply, event_for, invoke  # noqa: F401
