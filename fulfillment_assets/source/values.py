"""Values the API sends in another form than their column's type, read as that type where it is
safe: numeric text in a numeric column, timestamps in every ISO-8601 form and epoch numbers in a
timestamp column. What cannot be read stays in a variant column for the checks to name.

- Timestamps: with an offset (`Z`, `+02:00`, `+0200`), without one (read in the API's zone,
  `api_timezone`, UTC unless set), a space for `T`, any number of fractional digits (kept to the
  microsecond, the column's precision), a date alone (midnight). One C-level cast for the common
  form; the others in a few vectorized steps; Python only for a batch that holds non-timestamps.
- Epoch numbers (or digit-only text) in a timestamp column, by magnitude: below 1e11 seconds
  (until the year 5138), below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
- Numbers: decimal text (`"12.50"`, `"-3"`, `"1e3"`, surrounding blanks) in a `double` column,
  integer text in a `bigint` column; no thousands separators, no `nan` / `inf`.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

# The one timestamp type of the pipeline: microseconds, UTC.
TIMESTAMP = pa.timestamp("us", tz="UTC")
API_TIMEZONE_SETTING = "SOURCES__FULFILLMENT__API_TIMEZONE"
_NAIVE = pa.timestamp("us")
# Fractional digits past the microsecond (ShipStation sends 7, some APIs 9): cut, not rounded,
# so a time never moves to the next second.
_LONG_FRACTION = r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}\.\d{6})\d+"
_OFFSET = r"(Z|z|[+-]\d{2}(:?\d{2})?)$"
_DECIMAL = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_EPOCH_TEXT = re.compile(r"^\s*-?\d{1,19}(\.\d+)?\s*$")
# Epoch magnitudes: below each bound the unit, as a divisor to seconds.
_EPOCH_UNITS = ((1e11, 1), (1e14, 1_000), (1e17, 1_000_000))
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def api_zone(name: str | None) -> str:
    """The IANA zone the API's times without an offset are in; refuses an unknown name."""
    name = (name or "UTC").strip() or "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"api_timezone {name!r} is not an IANA time zone (e.g. UTC, America/New_York): set "
            f"{API_TIMEZONE_SETTING} (or api_timezone under [sources.fulfillment])"
        ) from None
    return name


def to_timestamps(texts: pa.Array, zone: str = "UTC") -> tuple[pa.Array, list[int]]:
    """Text as UTC timestamps, and the positions of the texts that are no timestamp (null in
    the result)."""
    try:
        return texts.cast(TIMESTAMP), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return _normalized_cast(texts, zone), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    tz = zoneinfo.ZoneInfo(zone)
    parsed: list[dt.datetime | None] = []
    unparsed: list[int] = []
    for position, value in enumerate(texts.to_pylist()):
        stamp = None if value is None else parse_timestamp(value, tz)
        if value is not None and stamp is None:
            unparsed.append(position)
        parsed.append(stamp)
    return pa.array(parsed, TIMESTAMP), unparsed


def _normalized_cast(texts: pa.Array, zone: str) -> pa.Array:
    """The other ISO-8601 forms in vectorized steps; raises if any text is none of them."""
    texts = pc.replace_substring_regex(texts, _LONG_FRACTION, r"\1")
    with_offset = pc.fill_null(pc.match_substring_regex(texts, _OFFSET), False)
    aware = pc.if_else(with_offset, texts, pa.scalar(None, pa.string())).cast(TIMESTAMP)
    naive = pc.if_else(with_offset, pa.scalar(None, pa.string()), texts).cast(_NAIVE)
    local = pc.assume_timezone(naive, zone, ambiguous="earliest", nonexistent="earliest")
    return pc.if_else(with_offset, aware, local.cast(TIMESTAMP))


def parse_timestamp(value: Any, tz: dt.tzinfo = dt.UTC) -> dt.datetime | None:
    """One value as a UTC datetime (ISO-8601 text, epoch number or digit text), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return from_epoch(value)
    if not isinstance(value, str):
        return None
    if _EPOCH_TEXT.match(value):
        return from_epoch(float(value))
    try:
        stamp = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=tz)
    return stamp.astimezone(dt.UTC)


def from_epoch(number: float) -> dt.datetime | None:
    """An epoch number as a UTC datetime, its unit decided by magnitude (module docstring)."""
    if number != number:  # NaN
        return None
    divisor = next((d for bound, d in _EPOCH_UNITS if abs(number) < bound), 1_000_000_000)
    try:
        return _EPOCH + dt.timedelta(seconds=number / divisor)
    except OverflowError:
        return None


def to_number(value: Any, data_type: str) -> int | float | None:
    """Numeric text as the column's number (`double` or `bigint`), or None if it is no number."""
    if not isinstance(value, str):
        return None
    if data_type == "bigint":
        integer = int(value) if _INTEGER.match(value) else None
        return integer if integer is not None and fits_exactly(integer, "bigint") else None
    # More digits than a double holds exactly would make two values one: kept as text.
    if data_type == "double" and _DECIMAL.match(value) and sum(map(str.isdigit, value)) <= 15:
        number = float(value)
        return number if number not in (float("inf"), float("-inf")) else None
    return None


# The integers a column of each type holds exactly (a double: every integer up to 2**53).
_EXACT_INTEGERS = {"bigint": (-(2**63), 2**63 - 1), "double": (-(2**53), 2**53)}


def fits_exactly(number: int, data_type: str) -> bool:
    """Whether the column type holds the integer exactly (any type but bigint / double does)."""
    low, high = _EXACT_INTEGERS.get(data_type, (number, number))
    return low <= number <= high
