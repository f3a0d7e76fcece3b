"""Data that changed since the first run, and the `updated_since` filter, at a few changes' cost.

Changed and added records get an `updated_at` after every base record (a generation spans a week,
so a lookback of an hour re-reads a sliver of it, not all of it); removed ids are no longer served.
The filter answers from the change sets alone when the value is past every base record, and from a
sorted index of the base records' `updated_at` (built once per data set, cached across
`configure()` calls) otherwise: no request rebuilds every record.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from functools import lru_cache

from fulfillment_assets.demo_api.options import DemoApiOptions
from fulfillment_assets.demo_api.records import base_updated_at, base_updated_bound, mix64

_DAY = 86_400
_WEEK = 7 * _DAY
_CHANGE_SALT = 0x5DEECE66D


def parse_since(raw: str) -> int | None:
    """An ISO-8601 timestamp as Unix seconds (naive means UTC), or None if it does not parse."""
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp()) + (1 if value.microsecond else 0)


@lru_cache(maxsize=2)
def _base_index(n: int, seed: int, version: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(updated_at, id) of the base records 1..n, sorted by updated_at, as two tuples."""
    pairs = sorted((base_updated_at(i, seed=seed, version=version), i) for i in range(1, n + 1))
    return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


class Changes:
    """The changed, added and removed records of one `DemoApiOptions`."""

    def __init__(self, options: DemoApiOptions) -> None:
        n = options.records
        self.n, self.seed, self.version = n, options.seed, options.data_version
        self.generation = options.change_generation
        self.removed = frozenset(options.removed_ids)
        self.changed = frozenset(i for i in options.changed_ids if 1 <= i <= n) - self.removed
        self.added = tuple(i for i in range(n + 1, n + 1 + options.added_records))
        self.added = tuple(i for i in self.added if i not in self.removed)
        self.active = bool(self.changed or self.added or self.removed)
        self._ids: list[int] | None = None
        self._filtered: dict[int, list[int]] = {}

    def is_new(self, record_id: int) -> bool:
        return record_id in self.changed or record_id > self.n

    def updated_at(self, record_id: int) -> int:
        """Unix seconds of a changed or added record: after every base record."""
        start = base_updated_bound(self.version) + _DAY + (self.generation - 1) * _WEEK
        return start + mix64(record_id ^ (self.seed << 32) ^ _CHANGE_SALT) % _WEEK

    def ids(self) -> list[int]:
        """Every served id in order: 1..n without the removed ones, then the added ones."""
        if self._ids is None:
            removed = self.removed
            base = range(1, self.n + 1)
            self._ids = [i for i in base if i not in removed] if removed else list(base)
            self._ids.extend(self.added)
        return self._ids

    def filtered(self, since: int) -> list[int]:
        """The served ids with `updated_at >= since`, in id order (cached per value)."""
        if since in self._filtered:
            return self._filtered[since]
        new = [i for i in (*self.changed, *self.added) if self.updated_at(i) >= since]
        ids = new
        if since <= base_updated_bound(self.version):
            times, base_ids = _base_index(self.n, self.seed, self.version)
            skip = self.changed | self.removed
            ids = new + [i for i in base_ids[bisect_left(times, since) :] if i not in skip]
        ids.sort()
        if len(self._filtered) > 64:
            self._filtered.clear()
        self._filtered[since] = ids
        return ids
