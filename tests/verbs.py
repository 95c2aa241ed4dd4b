"""Kept only for bench/ (bench/harness.py), which still imports it: the tests use tests.support.
Remove once bench/ imports nothing from tests/."""

from tests.support import Verbs  # noqa: F401
