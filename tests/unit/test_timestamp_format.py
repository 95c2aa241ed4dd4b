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


def test_formatting_agrees_with_the_calendar_on_every_kind_of_day():
    """format_ms computes the date in integer arithmetic (no datetime per timestamp): it agrees with
    datetime's calendar on leap days, century years, the epoch's neighbours and both ends."""
    from datetime import UTC, datetime, timedelta

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    days = list(range(-719_162, 2_932_897, 997)) + [-1, 0, 1, 11_016, 11_017, 11_059, 11_060, 2_932_896]
    for day in days:  # 2000-02-29 is day 11_016; 1900, 2100 are not leap years
        for ms in (day * 86_400_000, day * 86_400_000 + 86_399_999, day * 86_400_000 + 45_296_789):
            if clock.MIN_MS <= ms <= clock.MAX_MS:
                moment = epoch + timedelta(milliseconds=ms)
                assert clock.format_ms(ms) == (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
                                               f"{moment:%H:%M:%S}.{ms % 1000:03d}Z")
