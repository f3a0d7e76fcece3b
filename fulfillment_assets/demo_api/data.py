"""Deterministic synthetic fulfillment records, generated on the fly from (seed, id)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, Literal, get_args

from fulfillment_assets.demo_api.options import DemoApiOptions
from fulfillment_assets.settings import ORDER_STATUSES

RecordKind = Literal[
    "null_customer_id",
    "missing_customer_id",
    "customer_id_as_int",
    "null_order_status",
    "missing_order_status",
    "unknown_status",
    "duplicate",
]
RECORD_KINDS: tuple[str, ...] = get_args(RecordKind)
UNKNOWN_STATUS = "teleported"

_M64 = (1 << 64) - 1
# A fixed end date (not the wall clock) keeps every run byte-identical.
_END = int(dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp())
_WINDOW = 30 * 86_400
_EPOCH = dt.date(1970, 1, 1)

# Rough real-world mix; statuses added to settings later still appear (weight 5).
_STATUS_WEIGHTS = {
    "pending": 8,
    "processing": 12,
    "shipped": 25,
    "delivered": 42,
    "cancelled": 8,
    "returned": 5,
}
_STATUS_TABLE = tuple(s for s in ORDER_STATUSES for _ in range(_STATUS_WEIGHTS.get(s, 5)))
_SHIPPED = frozenset({"shipped", "delivered", "returned"})
_CARRIERS = (("UPS", "1Z"), ("FedEx", "FX"), ("DHL", "JD"), ("USPS", "94"))
_CURRENCIES = ("USD",) * 16 + ("EUR",) * 3 + ("GBP",)
# Multipliers for the fraction permutations: primes, so one of them is coprime to any N.
_PRIMES = (1_000_003, 998_244_353, 1_000_000_007, 2_147_483_647)


def _mix(x: int) -> int:
    # splitmix64 finalizer: a handful of int ops, far cheaper than random.Random per record.
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


@lru_cache(maxsize=4096)
def _day(day: int) -> str:
    return (_EPOCH + dt.timedelta(days=day)).isoformat()


# Lookup tables instead of per-field formatting: timestamps dominate record cost.
_HHMM = tuple(f"T{m // 60:02d}:{m % 60:02d}:" for m in range(1_440))
_SSZ = tuple(f"{s:02d}Z" for s in range(60))


def _ts(seconds: int) -> str:
    day, rem = divmod(seconds, 86_400)
    minutes, second = divmod(rem, 60)
    return _day(day) + _HHMM[minutes] + _SSZ[second]


def _hashes(record_id: int, seed: int) -> tuple[int, int]:
    h = _mix((seed * 0x9E3779B97F4A7C15 + record_id) & _M64)
    return h, _mix(h ^ 0xD6E8FEB86659FD93)


def _times(h: int, h2: int, status: str, version: int) -> tuple[int, int | None, int]:
    created = _END - 1 - h % _WINDOW
    shipped = created + 3_600 * (2 + (h >> 44) % 70) if status in _SHIPPED else None
    return created, shipped, (shipped or created) + (h2 >> 32) % 86_400 + version * 86_400


def base_updated_at(record_id: int, *, seed: int = 0, version: int = 0) -> int:
    """`updated_at` of `make_record`, in Unix seconds, without building the record."""
    h, h2 = _hashes(record_id, seed)
    return _times(h, h2, _STATUS_TABLE[(h >> 24) % len(_STATUS_TABLE)], version)[2]


# No base record of a version is updated later than this (created < _END, shipped at most 71 h
# later, updated up to a day after that): changed records are served after it.
def base_updated_bound(version: int) -> int:
    return _END - 1 + 71 * 3_600 + 86_399 + version * 86_400


def make_record(record_id: int, *, seed: int = 0, version: int = 0) -> dict[str, Any]:
    """The clean record for one id; data-quality knobs are applied by `Dataset`."""
    h, h2 = _hashes(record_id, seed)
    status = _STATUS_TABLE[(h >> 24) % len(_STATUS_TABLE)]
    carrier, prefix = _CARRIERS[(h >> 40) & 3]
    created, shipped, updated = _times(h, h2, status, version)
    return {
        "id": record_id,
        "customer_id": "C" + str(1 + h2 % 50_000).zfill(5),  # 2x cheaper than f"{:05d}"
        "order_status": status,
        "created_at": _ts(created),
        "updated_at": _ts(updated),
        "amount": (500 + (h2 >> 16) % 99_500 + 100 * version) / 100,
        "currency": _CURRENCIES[(h2 >> 52) % len(_CURRENCIES)],
        "items_count": 1 + (h2 >> 58) % 6,
        "shipment": {
            "carrier": carrier,
            "tracking_number": f"{prefix}{100_000_000_000 + (h >> 8) % 900_000_000_000}",
            "shipped_at": _ts(shipped) if shipped is not None else None,
        },
    }


def _spread(n: int, fraction: float, seed: int, salt: int) -> frozenset[int]:
    """Exactly round(fraction * n) ids of 1..n, scattered by a seeded permutation."""
    count = min(n, round(fraction * n))
    if n <= 0 or count <= 0:
        return frozenset()
    a = next(p for p in _PRIMES[salt:] + _PRIMES[:salt] if n % p)
    b = _mix((seed << 8) + salt) % n
    a_inv = pow(a, -1, n)
    # The ids whose permuted position ((id - 1) * a + b) % n falls below count.
    return frozenset((r - b) * a_inv % n + 1 for r in range(count))


class Dataset:
    """The records one `DemoApiOptions` serves, with its data-quality knobs resolved."""

    def __init__(self, options: DemoApiOptions) -> None:
        n = options.records
        self.n = n
        self.seed = options.seed
        self.version = options.data_version
        self.endless = options.endless
        # Duplicates are appended after id N, in id order, so total counts them.
        # The served copies may be a newer version of the record (an update while paging).
        self.dup_version = options.duplicate_version
        self.dup_tail = (
            () if self.endless else tuple(sorted(i for i in options.duplicate_ids if 1 <= i <= n))
        )
        self.total = n + len(self.dup_tail)
        self.null_customer = _spread(n, options.null_customer_id_fraction, self.seed, 0)
        self.null_status = _spread(n, options.null_order_status_fraction, self.seed, 1)
        self.missing_customer = options.missing_customer_id_ids
        self.missing_status = options.missing_order_status_ids
        self.customer_int = options.customer_id_as_int_ids
        self.unknown = options.unknown_status_ids
        self.extra = dict(options.extra_fields)
        from fulfillment_assets.demo_api.changes import Changes  # it builds on this module

        self.changes = Changes(options)
        # One membership test per record decides whether any knob applies to it.
        self.touched = (
            self.null_customer
            | self.null_status
            | self.missing_customer
            | self.missing_status
            | self.customer_int
            | self.unknown
        )

    def record(self, record_id: int, version: int | None = None) -> dict[str, Any]:
        """One served record. Precedence: missing key > explicit id sets > null fractions."""
        version = self.version if version is None else version
        new = not self.endless and self.changes.is_new(record_id)
        rec = make_record(record_id, seed=self.seed, version=version + new)
        if new:
            rec["updated_at"] = _ts(self.changes.updated_at(record_id))
        key = record_id
        if self.endless and key > self.n > 0:
            # Only endless mode goes past N; every knob repeats every N ids there.
            key = (key - 1) % self.n + 1
        if key in self.touched:
            if key in self.missing_customer:
                del rec["customer_id"]
            elif key in self.customer_int:
                rec["customer_id"] = int(rec["customer_id"][1:])
            elif key in self.null_customer:
                rec["customer_id"] = None
            if key in self.missing_status:
                del rec["order_status"]
            elif key in self.unknown:
                rec["order_status"] = UNKNOWN_STATUS
            elif key in self.null_status:
                rec["order_status"] = None
        if self.extra:
            rec.update(self.extra)
        return rec

    def served_total(self, since: int | None = None) -> int:
        """How many records the served sequence has (filtered to `updated_at >= since`)."""
        if since is not None and not self.endless:
            return len(self.changes.filtered(since))
        return len(self.changes.ids()) if self.changes.active else self.total

    def page(self, offset: int, limit: int, since: int | None = None) -> list[dict[str, Any]]:
        """Rows [offset, offset + limit) of the served sequence (filtered to `updated_at >=
        since`: in id order, without duplicate copies)."""
        if self.endless:
            return [self.record(i) for i in range(offset + 1, offset + limit + 1)]
        if since is not None or self.changes.active:
            ids = self.changes.ids() if since is None else self.changes.filtered(since)
            return [self.record(i) for i in ids[offset : offset + limit]]
        end = min(offset + limit, self.total)
        if offset >= end:
            return []
        page = [self.record(i) for i in range(offset + 1, min(end, self.n) + 1)]
        if end > self.n:
            dups = self.dup_tail[max(offset - self.n, 0) : end - self.n]
            page.extend(self.record(i, self.dup_version) for i in dups)
        return page


def record_ids_with(kind: RecordKind, options: DemoApiOptions) -> set[int]:
    """The ids in 1..N whose served record shows `kind` (after precedence)."""
    ds = Dataset(options)
    ids = range(1, ds.n + 1)
    missing_c = {i for i in ds.missing_customer if i in ids}
    missing_s = {i for i in ds.missing_status if i in ids}
    as_int = {i for i in ds.customer_int if i in ids} - missing_c
    unknown = {i for i in ds.unknown if i in ids} - missing_s
    by_kind = {
        "missing_customer_id": missing_c,
        "customer_id_as_int": as_int,
        "null_customer_id": set(ds.null_customer) - missing_c - as_int,
        "missing_order_status": missing_s,
        "unknown_status": unknown,
        "null_order_status": set(ds.null_status) - missing_s - unknown,
        "duplicate": set(ds.dup_tail),
    }
    if kind not in by_kind:
        raise ValueError(f"unknown kind {kind!r}; expected one of {RECORD_KINDS}")
    return by_kind[kind]


def expected_counts(options: DemoApiOptions) -> dict[str, int | None]:
    """Served row counts per kind (duplicate copies count twice); rows is None if endless."""
    dups = set(Dataset(options).dup_tail)
    counts: dict[str, int | None] = {}
    for kind in RECORD_KINDS:
        ids = record_ids_with(kind, options)  # type: ignore[arg-type]
        counts[kind] = len(ids) if kind == "duplicate" else len(ids) + len(ids & dups)
    counts["rows"] = None if options.endless else options.records + len(dups)
    counts["unique_ids"] = options.records
    return counts
