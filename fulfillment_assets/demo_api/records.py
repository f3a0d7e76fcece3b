"""Deterministic synthetic fulfillment records, generated on the fly from (seed, id).

The record of one id and its `updated_at`, computed without any table: `data.py` (what a set of
options serves) and `changes.py` (what changed between runs) both build on it.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from fulfillment_assets.settings import ORDER_STATUSES

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


def mix64(x: int) -> int:
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


def iso_seconds(seconds: int) -> str:
    day, rem = divmod(seconds, 86_400)
    minutes, second = divmod(rem, 60)
    return _day(day) + _HHMM[minutes] + _SSZ[second]


def _hashes(record_id: int, seed: int) -> tuple[int, int]:
    h = mix64((seed * 0x9E3779B97F4A7C15 + record_id) & _M64)
    return h, mix64(h ^ 0xD6E8FEB86659FD93)


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
        "created_at": iso_seconds(created),
        "updated_at": iso_seconds(updated),
        "amount": (500 + (h2 >> 16) % 99_500 + 100 * version) / 100,
        "currency": _CURRENCIES[(h2 >> 52) % len(_CURRENCIES)],
        "items_count": 1 + (h2 >> 58) % 6,
        "shipment": {
            "carrier": carrier,
            "tracking_number": f"{prefix}{100_000_000_000 + (h >> 8) % 900_000_000_000}",
            "shipped_at": iso_seconds(shipped) if shipped is not None else None,
        },
    }


def spread_ids(n: int, fraction: float, seed: int, salt: int) -> frozenset[int]:
    """Exactly round(fraction * n) ids of 1..n, scattered by a seeded permutation."""
    count = min(n, round(fraction * n))
    if n <= 0 or count <= 0:
        return frozenset()
    a = next(p for p in _PRIMES[salt:] + _PRIMES[:salt] if n % p)
    b = mix64((seed << 8) + salt) % n
    a_inv = pow(a, -1, n)
    # The ids whose permuted position ((id - 1) * a + b) % n falls below count.
    return frozenset((r - b) * a_inv % n + 1 for r in range(count))
