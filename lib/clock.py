"""The one clock and the one timestamp/duration codec of the project.

Timestamps travel as ISO 8601 strings in UTC with milliseconds and are stored as integer epoch
milliseconds. Tests move time by patching :func:`now_ms`.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from functools import lru_cache

from lib.errors import ValidationError

# Offset so that every representable timestamp (years 1..9999) sorts as a fixed-width positive
# number inside sort keys: 62135596800000 ms separate 0001-01-01 from the Unix epoch.
_SORT_OFFSET_MS = 62_135_596_800_000
_SORT_WIDTH = 15
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The representable range: 0001-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z.
MIN_MS = -_SORT_OFFSET_MS
MAX_MS = 253_402_300_799_999

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwMy])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}


def now_ms() -> int:
    """Current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)?", re.ASCII)


def parse_timestamp(value: str, field: str = "timestamp") -> int:
    """`YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or `±HH:MM` (none = UTC) -> epoch
    milliseconds (§1). Anything else, trailing characters included, is a 400 naming the field."""
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        shown = f"'{value}'" if isinstance(value, str) and len(value) <= 40 and value.isprintable() else "the value"
        raise ValidationError(f"{field}: {shown} is not a timestamp like 2026-11-27T21:07:00.000Z")
    base, fraction, offset = match.groups()
    try:
        parsed = datetime.fromisoformat(base + (offset or "+00:00").replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{field}: '{value}' is not a valid date and time") from None
    # Integer arithmetic keeps millisecond precision exact (no float rounding).
    delta = parsed - _UNIX_EPOCH
    ms = (delta.days * 86400 + delta.seconds) * 1000 + int((fraction or "0").ljust(3, "0")[:3])
    if not MIN_MS <= ms <= MAX_MS:
        raise ValidationError(f"{field}: '{value}' is outside years 0001-9999 in UTC")
    return ms


def format_ms(ms: int) -> str:
    """Epoch milliseconds -> `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    seconds, millis = divmod(ms, 1000)
    days, second = divmod(seconds, 86400)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{_date(days)}{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


@lru_cache(maxsize=16)
def _date(days: int) -> str:
    """`YYYY-MM-DDT` of a day (days since 1970-01-01). A pure calendar computation, kept for the few
    days a process formats most (a page's timestamps fall on a handful of days)."""
    year, month, day = _civil(days)
    # Formatted by hand: strftime's %Y drops leading zeros before year 1000 on glibc (0999 -> 999).
    return f"{year:04d}-{month:02d}-{day:02d}T"


def _civil(days: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 -> (year, month, day) of the proleptic Gregorian calendar, in integer
    arithmetic (H. Hinnant's `civil_from_days`): every reply formats several timestamps, and a
    datetime for each costs more than the rest of the formatting."""
    days += 719_468
    era = days // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153  # March = 0
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    return year_of_era + era * 400 + (month <= 2), month, day


def sortable_ms(ms: int) -> str:
    """Fixed-width, always-positive rendering of a timestamp for use inside sort keys."""
    return f"{ms + _SORT_OFFSET_MS:0{_SORT_WIDTH}d}"


def parse_duration(text: str) -> int:
    """`<integer><unit>` with units s m h d w M y -> seconds (DEFAULT_EXPIRATION format)."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"'{text}' is not a duration like 5y, 30d or 3600s")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
