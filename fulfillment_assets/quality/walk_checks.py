"""Checks on the latest walk of the API: did it receive every record, and what did it mark deleted.

A listing that moves while it is walked can shift records past the offsets; the walk measures
itself and walks again (`source/completeness.py`). When it still may have missed records, the
run loads what it received and marks nothing deleted, and `walk_complete` says how many may be
missing. Rows a complete full walk marked deleted leave the models; `no_rows_marked_deleted`
names how many and which, so a delete never goes by unseen. Both warn (WARN never blocks).
"""

from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from fulfillment_assets import settings
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.display import shown
from fulfillment_assets.ingest.walks import walk_in_progress
from fulfillment_assets.quality.check_results import (
    check_metadata,
    latest_raw_metadata,
    unjudgeable,
)
from fulfillment_assets.settings import DELETED_AT
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.run_liveness import RunLiveness

RAW = settings.RESOURCE_NAME


def _latest_sync(context: AssetCheckExecutionContext) -> dict[str, Any]:
    """The raw asset's latest materialization metadata, as plain values."""
    metadata = latest_raw_metadata(context.instance) or {}
    return {label: entry.value for label, entry in metadata.items()}


@asset_check(
    asset=RAW_ASSET_KEY,
    name="walk_complete",
    # Blocking like every check here, but it only ever fails with WARN, which blocks nothing.
    blocking=True,
    description=(
        "Warns when the latest walk of the API may have missed records: the listing moved while "
        "it was walked and the passes allowed did not receive every id (distinct ids against "
        "`total`, or records received twice without one). Says how many may be missing; such a "
        "walk marks nothing deleted. Warns too while a full walk is still going: the raw table "
        "holds part of it, and the next run resumes it."
    ),
)
def walk_complete(
    context: AssetCheckExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
) -> AssetCheckResult:
    if early := unjudgeable(context.instance, warehouse, ("id",)):
        return early
    if walk := walk_in_progress(warehouse):
        total = walk.ledger.get("last_total")
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description=(
                f"a full walk is still going, the raw table holds part of it: "
                f"{walk.describe(total)}; the next fulfillment_ingest run resumes it at offset "
                f"{max(walk.offset - walk.overlap, 0)}"
            ),
            metadata={
                "walk_id": MetadataValue.text(walk.walk_id),
                "walk_records": MetadataValue.int(walk.records),
                **({"walk_records_expected": MetadataValue.int(total)} if total else {}),
            },
        )
    sync = _latest_sync(context)
    if "walk_complete" not in sync:
        return AssetCheckResult(passed=True, description="no walk judged yet")
    missing = int(sync["records_possibly_missing"])
    metadata = check_metadata(
        int(sync.get("rows_loaded", 0)),
        missing,
        [],
        walk_passes=MetadataValue.int(int(sync["walk_passes"])),
        records_received_twice=MetadataValue.int(int(sync["records_received_twice"])),
    )
    if sync["walk_complete"]:
        return AssetCheckResult(passed=True, description=sync["walk_summary"], metadata=metadata)
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description=sync["walk_summary"],
        metadata=metadata,
    )


@asset_check(
    asset=RAW_ASSET_KEY,
    name="no_rows_marked_deleted",
    # Blocking like every check here, but it only ever fails with WARN, which blocks nothing.
    blocking=True,
    description=(
        "Warns when the latest run marked rows deleted (a complete full walk did not return "
        "them): how many, and a sample of their ids. They stay in the raw table with "
        "`_deleted_at` set and leave the models."
    ),
)
def no_rows_marked_deleted(
    context: AssetCheckExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
) -> AssetCheckResult:
    if early := unjudgeable(context.instance, warehouse, ("id",)):
        return early
    sync = _latest_sync(context)
    marked = int(sync.get("rows_marked_deleted", 0))
    checked = int(sync.get("dagster/row_count", 0))
    if not marked:
        return AssetCheckResult(
            passed=True,
            description="the latest run marked no row deleted",
            metadata=check_metadata(checked, 0, []),
        )
    # The latest run's marks share one time: the run's start (ingest/deletes.py).
    sample = [
        row[0]
        for row in warehouse.query(
            f"SELECT id FROM {RAW} WHERE {DELETED_AT} = (SELECT max({DELETED_AT}) FROM {RAW}) "
            f"ORDER BY id LIMIT {settings.SAMPLE_IDS}"
        )
    ]
    more = f" and {marked - len(sample)} more" if marked > len(sample) else ""
    ids = ", ".join(shown(row_id) for row_id in sample)
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"the latest full walk marked {marked} rows deleted (the API no longer returns "
            f"them): ids {ids}{more}; they left the models"
        ),
        metadata=check_metadata(checked, marked, sample),
    )
