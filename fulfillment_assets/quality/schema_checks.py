"""The schema contract of the raw table: the seed's columns with their declared types and
nullability, judged on the values the table holds (a drift that stopped is reported as cleared)."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from fulfillment_assets import settings
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.quality import history
from fulfillment_assets.quality.check_results import check_metadata, offending, unjudgeable
from fulfillment_assets.quality.row_rules import variant_columns
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.run_liveness import RunLiveness
from fulfillment_assets.warehouse.sql import identifier

RAW = settings.RESOURCE_NAME


@asset_check(
    asset=RAW_ASSET_KEY,
    blocking=True,
    description=(
        "`id`, `customer_id` and `order_status` exist with their declared types and "
        "nullability, and the table holds no value of another type for them (in a dlt variant "
        "column such as `customer_id__v_bigint`). Each deviation is named; a drift whose values "
        "are gone is reported as cleared, with when it was last seen, and does not fail."
    ),
)
def schema_contract(
    context: AssetCheckExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
) -> AssetCheckResult:
    if early := unjudgeable(context.instance, warehouse, ()):
        return early
    columns = warehouse.columns(RAW)
    stored = warehouse.stored_schema().get("tables", {}).get(RAW, {}).get("columns", {})
    deviations = []
    for name, hints in settings.CONTRACT_COLUMNS.items():
        column = stored.get(name)
        if name not in columns or column is None:
            deviations.append(f"{name} is missing")
            continue
        # `id` may be either of settings.ID_TYPES (the seed does not state it).
        types = [str(hints["data_type"])] if "data_type" in hints else [*settings.ID_TYPES]
        if column.get("data_type") not in types:
            deviations.append(f"{name} is {column.get('data_type')}, expected {' or '.join(types)}")
        if column.get("nullable", True) != hints["nullable"]:
            expected = "nullable" if hints["nullable"] else "not null"
            deviations.append(f"{name} should be {expected}")
    # A variant column stays once dlt made it: judge the values it holds now, not that it exists.
    variants = [v for name in settings.CONTRACT_COLUMNS for v in variant_columns(columns, name)]
    values: dict[str, int] = {}
    if variants:
        counted = ", ".join(f"count({identifier(v)})" for v in variants)
        counts = warehouse.query(f"SELECT {counted} FROM {RAW}")
        values = dict(zip(variants, counts[0], strict=True))
    last_seen = history.drift_last_seen(warehouse, variants)
    history.remember_drifts(warehouse, {v: n for v, n in values.items() if n})
    cleared = []
    for variant, count in values.items():
        column, data_type = variant.rsplit("__v_", 1)
        if count:
            deviations.append(f"{column} has {count} values of type {data_type} (column {variant})")
        else:
            seen = last_seen.get(variant, "before drifts were recorded")
            cleared.append(f"{column} as {data_type} cleared (no values now; last seen {seen})")
    condition = " OR ".join(f"{identifier(v)} IS NOT NULL" for v, n in values.items() if n)
    condition = condition or "FALSE"
    found = offending(warehouse, condition)
    description = "; ".join(deviations) or "; ".join(["schema as declared", *cleared])
    return AssetCheckResult(
        passed=not deviations,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata=check_metadata(
            found["checked"],
            found["offending"],
            found["sample"],
            deviations=MetadataValue.json(deviations),
            cleared_drifts=MetadataValue.json(cleared),
        ),
    )
