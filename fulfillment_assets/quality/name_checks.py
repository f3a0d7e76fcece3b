"""A check on the raw table's column names: API fields whose names normalize onto one column.

The source loads such a field under a distinct column (`customer_id__collision_1` for
`customerId` beside `customer_id`, see `source/arrow.py`) instead of failing the run; this check
makes that visible, naming both fields, as a warning (WARN severity never blocks downstream).
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from fulfillment_assets import settings
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.display import LISTED_VALUES, shown
from fulfillment_assets.quality.check_results import unjudgeable
from fulfillment_assets.source.arrow import COLLISION_SUFFIX
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.run_liveness import RunLiveness


@asset_check(
    asset=RAW_ASSET_KEY,
    name="field_names_distinct",
    # Blocking like every check here, but it only ever fails with WARN, which blocks nothing.
    blocking=True,
    description=(
        "Warns when the API sends fields whose names normalize onto the same column "
        "(`customerId` and `customer_id`): the later one is loaded as `<column>__collision_N`."
    ),
)
def field_names_distinct(
    context: AssetCheckExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
) -> AssetCheckResult:
    # Like every check: an unreadable table is an ERROR, never "every field has a column";
    # nothing loaded yet is a pass.
    if early := unjudgeable(context.instance, warehouse, ()):
        return early
    table = warehouse.stored_schema().get("tables", {}).get(settings.RESOURCE_NAME, {})
    collisions = {
        name: column.get("description") or f"a field normalizing onto `{name}`"
        for name, column in table.get("columns", {}).items()
        if COLLISION_SUFFIX in name
    }
    if not collisions:
        return AssetCheckResult(passed=True, description="every field has a column of its own")
    # An API may send thousands of such fields: at most LISTED_VALUES named, all counted.
    names = sorted(collisions)[:LISTED_VALUES]
    lines = [
        f"`{shown(name)}` holds {shown(collisions[name], 200)}, beside "
        f"`{shown(name.partition(COLLISION_SUFFIX)[0])}`"
        for name in names
    ]
    description = "; ".join(lines)
    if len(collisions) > LISTED_VALUES:
        description += f"; and {len(collisions) - LISTED_VALUES} more"
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "collision_columns": MetadataValue.json([shown(name) for name in names]),
            "collision_columns_count": MetadataValue.int(len(collisions)),
        },
    )
