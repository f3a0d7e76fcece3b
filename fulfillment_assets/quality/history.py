"""What the checks remember between runs, kept in the destination so it survives a new machine.

- `order_statuses_seen`: every `order_status` value the raw table has held, with when it was
  first seen; without configured statuses the first load's statuses become the known ones.
- `schema_drifts_seen`: every dlt variant column of a contract column that held values, with
  when it last did; a drift whose values are gone is reported as cleared with that time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from fulfillment_assets import settings
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.sql import literal, literals

RAW = settings.RESOURCE_NAME
STATUSES_SEEN = "order_statuses_seen"
DRIFTS_SEEN = "schema_drifts_seen"


def _now() -> str:
    return f"CAST({literal(datetime.now(UTC).isoformat())} AS TIMESTAMPTZ)"


def status_counts(warehouse: Warehouse) -> dict[str, int]:
    """Rows per non-null `order_status` in the raw table."""
    rows = warehouse.query(
        f"SELECT order_status, count(*) FROM {RAW} WHERE order_status IS NOT NULL "
        "GROUP BY order_status ORDER BY order_status"
    )
    return {str(status): int(count) for status, count in rows}


def known_statuses(warehouse: Warehouse) -> set[str]:
    """Statuses recorded as seen by earlier runs (empty before the first load with statuses)."""
    warehouse.execute(
        f"CREATE TABLE IF NOT EXISTS {STATUSES_SEEN} "
        "(order_status TEXT, first_seen_at TIMESTAMPTZ, first_seen_rows BIGINT)"
    )
    return {str(row[0]) for row in warehouse.query(f"SELECT order_status FROM {STATUSES_SEEN}")}


def remember_statuses(warehouse: Warehouse, counts: dict[str, int]) -> None:
    """Records statuses as seen, now, with their row counts."""
    if counts:
        values = ", ".join(
            f"({literal(status)}, {_now()}, {int(rows)})" for status, rows in counts.items()
        )
        warehouse.execute(f"INSERT INTO {STATUSES_SEEN} VALUES {values}")


def drift_last_seen(warehouse: Warehouse, variants: Iterable[str]) -> dict[str, str]:
    """Variant column -> when it last held values (ISO time), for those recorded."""
    variants = list(variants)
    warehouse.execute(
        f"CREATE TABLE IF NOT EXISTS {DRIFTS_SEEN} "
        "(variant_column TEXT, last_seen_at TIMESTAMPTZ, last_seen_values BIGINT)"
    )
    if not variants:
        return {}
    rows = warehouse.query(
        f"SELECT variant_column, max(last_seen_at) FROM {DRIFTS_SEEN} "
        f"WHERE variant_column IN ({literals(variants)}) GROUP BY variant_column"
    )
    return {str(name): _iso(seen) for name, seen in rows}


def remember_drifts(warehouse: Warehouse, values: dict[str, int]) -> None:
    """Records that these variant columns hold values now (one row each, replaced)."""
    if values:
        rows = ", ".join(f"({literal(name)}, {_now()}, {int(n)})" for name, n in values.items())
        warehouse.execute(
            f"DELETE FROM {DRIFTS_SEEN} WHERE variant_column IN ({literals(values)})",
            f"INSERT INTO {DRIFTS_SEEN} VALUES {rows}",
        )


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    return str(value)
