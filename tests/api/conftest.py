"""Fixtures of the API tier besides tests/conftest.py: `feed`, the test table's change-feed stream
(tests/api/feed_stream.py)."""

from tests.api.feed_stream import feed  # noqa: F401
