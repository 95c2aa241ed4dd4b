"""Timestamps in replies: `YYYY-MM-DDTHH:MM:SS.mmmZ`, four-digit years at both ends of the range the
contract allows (0001-9999), and what is formatted parses back to the same moment."""

import pytest

from lib import clock


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00.000Z", "0999-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z",
                                  "1970-01-01T00:00:00.000Z", "2026-11-27T21:07:00.120Z", "9999-12-31T23:59:59.999Z"])
def test_formatted_timestamps_parse_back_to_the_same_moment(text):
    ms = clock.parse_timestamp(text)
    assert clock.format_ms(ms) == text
    assert clock.parse_timestamp(clock.format_ms(ms)) == ms
