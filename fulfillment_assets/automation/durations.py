"""Durations and instants as operators read them: "2 h 5 min", "24 h", an ISO time in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def human_duration(value: timedelta | float) -> str:
    """`45 s`, `12 min`, `2 h 5 min`, `24 h`, `3 d 4 h`: two units at most, the larger first."""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    # A day-sized window reads "24 h"; days only from two of them on.
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def iso_time(timestamp: float) -> str:
    """A Unix timestamp as an ISO 8601 time in UTC, to the second."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def parse_iso_time(text: str) -> float:
    """The Unix timestamp of an ISO 8601 time (as `iso_time` writes it)."""
    return datetime.fromisoformat(text).timestamp()
