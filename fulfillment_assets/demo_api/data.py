"""The records one set of demo API options serves: data-quality knobs, duplicates, changes."""

from __future__ import annotations

from typing import Any, Literal, get_args

from fulfillment_assets.demo_api.changes import Changes
from fulfillment_assets.demo_api.options import DemoApiOptions
from fulfillment_assets.demo_api.records import iso_seconds, make_record, spread_ids

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
        self.null_customer = spread_ids(n, options.null_customer_id_fraction, self.seed, 0)
        self.null_status = spread_ids(n, options.null_order_status_fraction, self.seed, 1)
        self.missing_customer = options.missing_customer_id_ids
        self.missing_status = options.missing_order_status_ids
        self.customer_int = options.customer_id_as_int_ids
        self.unknown = options.unknown_status_ids
        self.extra = dict(options.extra_fields)

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
            rec["updated_at"] = iso_seconds(self.changes.updated_at(record_id))
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
