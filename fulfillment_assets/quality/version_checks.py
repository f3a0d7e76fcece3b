"""A check on the raw table's versions: records the API sent older than the version stored.

The merge keeps them out (`ingest/versions.py`: newest `updated_at` wins across loads), so the
table is right; an API that serves older versions (a lagging replica) is still worth knowing
about, as a warning naming the ids (WARN severity never blocks downstream).
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.display import shown_id
from fulfillment_assets.ingest.versions import DISCARDED_COUNT, DISCARDED_SAMPLE
from fulfillment_assets.quality.check_results import (
    check_metadata,
    latest_raw_metadata,
    unjudgeable,
)
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.run_liveness import RunLiveness


@asset_check(
    asset=RAW_ASSET_KEY,
    name="updated_at_never_goes_back",
    # Blocking like every check here, but it only ever fails with WARN, which blocks nothing.
    blocking=True,
    description=(
        "Warns when the latest load brought records with an earlier `updated_at` than the "
        "version stored for their id (a lagging replica): the newer stored version was kept."
    ),
)
def updated_at_never_goes_back(
    context: AssetCheckExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
) -> AssetCheckResult:
    # Never a pass on a table it cannot see, like every check here.
    if early := unjudgeable(context.instance, warehouse, ("id", "updated_at")):
        return early
    metadata = latest_raw_metadata(context.instance) or {}
    if DISCARDED_COUNT not in metadata:
        return AssetCheckResult(passed=True, description="no load measured yet")
    count = int(metadata[DISCARDED_COUNT].value)
    sample = list(metadata[DISCARDED_SAMPLE].value) if DISCARDED_SAMPLE in metadata else []
    # The records the latest load brought are the rows this check judges.
    received = int(metadata["rows_loaded"].value) if "rows_loaded" in metadata else 0
    result_metadata = check_metadata(
        received,
        count,
        [row["id"] for row in sample],
        **{
            DISCARDED_COUNT: MetadataValue.int(count),
            DISCARDED_SAMPLE: MetadataValue.json(sample),
        },
    )
    if not count:
        return AssetCheckResult(
            passed=True,
            description="no record of the latest load was older than the version stored",
            metadata=result_metadata,
        )
    named = ", ".join(
        f"{shown_id(row['id'])} ({row['arrived_updated_at']} < {row['stored_updated_at']})"
        for row in sample
    )
    more = f" and {count - len(sample)} more" if count > len(sample) else ""
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"the latest load brought {count} records older than the version stored; the newer "
            f"version was kept for ids {named}{more}"
        ),
        metadata=result_metadata,
    )
