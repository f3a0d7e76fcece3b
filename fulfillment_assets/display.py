"""Values as reports quote them: bounded, control characters escaped; shares rounded.

A check's description, metadata and log lines quote values the API sent (a status, an id, a
field name). An API may send a 1 MB status or ANSI escapes, CR and bidi overrides; quoted as
they are they would bloat the event log on every run and rewrite the terminal that prints it.

An error is read by its chain of causes (`causes`): the one reader of Python's cause chains.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

# Characters of one value a report quotes; longer ones are cut and their length said.
VALUE_CHARS = 80
# Entries of a list or mapping of values a report quotes; the rest are counted.
LISTED_VALUES = 50


def escaped(text: str) -> str:
    """Control and format characters (newlines, ANSI escapes, bidi overrides) as escapes."""
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
        else char
        for char in text
    )


def shown(value: Any, limit: int = VALUE_CHARS) -> str:
    """A value as a report quotes it: escaped, cut to `limit` characters, its length said."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return escaped(text)
    return f"{escaped(text[:limit])}... ({len(text):,} characters)"


def shown_id(value: Any) -> Any:
    """An id for a report: numbers as they are, text bounded and escaped."""
    return shown(value) if isinstance(value, str) else value


def shown_counts(counts: dict[str, int]) -> dict[str, int]:
    """Value -> count, for metadata: the first LISTED_VALUES values, each bounded."""
    listed = dict(list(counts.items())[:LISTED_VALUES])
    return {shown(value): count for value, count in listed.items()}


def listed(items: list[str], total: int | None = None) -> str:
    """Items already shown, joined, at most LISTED_VALUES, with how many more there are."""
    total = len(items) if total is None else total
    text = ", ".join(items[:LISTED_VALUES])
    return f"{text} and {total - LISTED_VALUES} more" if total > LISTED_VALUES else text


# Significant digits of a share a report shows: 0.02, not 0.01996007984031936; a small share
# (12 rows in a million: 1.2e-05) keeps its digits, where rounding to decimal places would not.
SHARE_DIGITS = 3


def share(part: int, whole: int) -> float:
    """`part` of `whole` as a fraction to SHARE_DIGITS significant digits; 0.0 of nothing."""
    return float(f"{part / whole:.{SHARE_DIGITS}g}") if whole else 0.0


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it was raised from (or during), outermost first; each error once.

    dlt's `PipelineStepFailed` also holds the error of the step it wraps as `exception`: followed
    when no cause or context is set. Read by that attribute, not by class, so this module (below
    every layer) imports no dlt.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        following = current.__cause__
        if following is None and not current.__suppress_context__:
            following = current.__context__
        if following is None:
            wrapped = getattr(current, "exception", None)
            following = wrapped if isinstance(wrapped, BaseException) else None
        current = following
