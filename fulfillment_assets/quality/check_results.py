"""What every check on the raw table reports, and what it says when it cannot read the table.

Every check reports the rows it checked, the offending rows (count and fraction) and up to
`settings.SAMPLE_IDS` offending ids. A check never passes on data it could not read: when the raw
asset's latest materialization counted rows and the table or a column the check needs is not
found, it fails with ERROR saying so.
"""

from collections.abc import Collection
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterInstance,
    IntMetadataValue,
    MetadataValue,
)

from fulfillment_assets import settings
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.display import shown_id
from fulfillment_assets.warehouse.resource import Warehouse

RAW = settings.RESOURCE_NAME


def offending(warehouse: Warehouse, condition: str) -> dict[str, Any]:
    """Rows checked, offending rows and a sample of their ids."""
    ((checked, found),) = warehouse.query(
        f"SELECT count(*), count(CASE WHEN {condition} THEN 1 END) FROM {RAW}"
    )
    sample = [
        row[0]
        for row in warehouse.query(
            f"SELECT id FROM {RAW} WHERE {condition} ORDER BY id LIMIT {settings.SAMPLE_IDS}"
        )
    ]
    return {"checked": checked, "offending": found, "sample": sample}


def check_metadata(checked: int, found: int, sample: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "rows_checked": MetadataValue.int(checked),
        "offending_rows": MetadataValue.int(found),
        "offending_fraction": MetadataValue.float(found / checked if checked else 0.0),
        # Ids are the API's: text ids bounded and escaped like every value a report quotes.
        "sample_offending_ids": MetadataValue.json([shown_id(value) for value in sample]),
        **extra,
    }


NOTHING_LOADED = AssetCheckResult(
    passed=True, description="no rows loaded yet", metadata=check_metadata(0, 0, [])
)


def latest_raw_metadata(instance: DagsterInstance) -> dict[str, Any] | None:
    """The raw asset's latest materialization metadata (what the load reported, read by the
    checks); None if it was never materialized."""
    event = instance.get_latest_materialization_event(RAW_ASSET_KEY)
    materialization = event.asset_materialization if event else None
    return dict(materialization.metadata) if materialization else None


def rows_at_latest_materialization(instance: DagsterInstance) -> int:
    """Rows the raw table held after its latest materialization (0 if never materialized)."""
    rows = (latest_raw_metadata(instance) or {}).get("dagster/row_count")
    # The raw asset records its row count as an int (ingest/assets.py).
    return int(rows.value or 0) if isinstance(rows, IntMetadataValue) else 0


def unreadable(
    instance: DagsterInstance, warehouse: Warehouse, needed: Collection[str]
) -> str | None:
    """Why the raw table cannot be judged, or None when it can (or nothing was ever loaded).

    Returns "" when nothing was loaded yet: the table is rightly absent."""
    columns = warehouse.columns(RAW)
    if not columns:
        rows = rows_at_latest_materialization(instance)
        if not rows:
            return ""
        return (
            f"the raw table {settings.DATASET_NAME}.{RAW} is not found in the "
            f"{warehouse.destination_name()} destination, but its latest materialization counted "
            f"{rows} rows: check FULFILLMENT_DESTINATION and its credentials"
        )
    absent = [name for name in needed if name not in columns]
    if absent:
        return (
            f"the raw table {settings.DATASET_NAME}.{RAW} has no column {', '.join(absent)} "
            f"(columns found: {', '.join(sorted(columns))})"
        )
    return None


def unjudgeable(
    instance: DagsterInstance, warehouse: Warehouse, needed: Collection[str]
) -> AssetCheckResult | None:
    """A check's result when it cannot judge the raw table: an ERROR when the table, or a column
    it needs, cannot be read (never a pass); a pass when nothing was loaded yet. None when the
    check can judge the table."""
    reason = unreadable(instance, warehouse, needed)
    if reason is None:
        return None
    return cannot_read(reason) if reason else NOTHING_LOADED


def cannot_read(reason: str) -> AssetCheckResult:
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=f"could not read the data: {reason}",
        metadata=check_metadata(0, 0, []),
    )
