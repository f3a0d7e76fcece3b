"""A check on the raw table's values that could not be read as their column's type.

The source reads numeric text, every ISO-8601 form and epoch numbers as their column's type
(`source/values.py`); what is left (`"12,50"`, a comma string in a field of lists) is kept in a
dlt variant column (`tags__v_text`). For the contract columns the blocking `schema_contract`
check reports those as an ERROR; for every other column this check names the variant column and
how many values it holds, as a warning (WARN severity never blocks downstream).
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
from fulfillment_assets.quality.check_results import check_metadata, offending, unjudgeable
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.run_liveness import RunLiveness
from fulfillment_assets.warehouse.sql import identifier

RAW = settings.RESOURCE_NAME


@asset_check(
    asset=RAW_ASSET_KEY,
    name="values_of_their_column_type",
    # Blocking like every check here, but it only ever fails with WARN, which blocks nothing.
    blocking=True,
    description=(
        "Warns when a column other than `id`, `customer_id` and `order_status` has values "
        "that could not be read as its type: names each variant column (e.g. `tags__v_text`) "
        "and how many values it holds."
    ),
)
def values_of_their_column_type(
    context: AssetCheckExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
) -> AssetCheckResult:
    if early := unjudgeable(context.instance, warehouse, ()):
        return early
    columns = warehouse.columns(RAW)
    variants = [
        name
        for name in columns
        if "__v_" in name and name.rsplit("__v_", 1)[0] not in settings.CONTRACT_COLUMNS
    ]
    # The rows judged, like every check on the raw table, and one count per variant column.
    (row,) = warehouse.query(
        f"SELECT {', '.join(['count(*)', *(f'count({identifier(v)})' for v in variants)])} "
        f"FROM {RAW}"
    )
    checked, variant_counts = int(row[0]), row[1:]
    counts = {v: int(n) for v, n in zip(variants, variant_counts, strict=True) if n}
    if not counts:
        return AssetCheckResult(
            passed=True,
            description="every value is of its column's type or was read as it",
            metadata=check_metadata(checked, 0, []),
        )
    # A row counts once however many of its values were left in variant columns.
    rows = offending(warehouse, " OR ".join(f"{identifier(v)} IS NOT NULL" for v in counts))
    lines = [
        f"{variant.rsplit('__v_', 1)[0]}: {count} values of type {variant.rsplit('__v_', 1)[1]}"
        f" kept in `{variant}`"
        for variant, count in sorted(counts.items())
    ]
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description="; ".join(lines),
        metadata=check_metadata(
            rows["checked"],
            rows["offending"],
            rows["sample"],
            variant_columns=MetadataValue.json(counts),
        ),
    )
