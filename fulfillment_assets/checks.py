"""Asset checks on the raw table, each one SQL run inside the destination.

Every check reports the rows it checked, the offending rows (count and fraction) and up to
`settings.SAMPLE_IDS` offending ids. The row-level rules are defined once, here, and the
validated / rejected tables in `models.py` are built from the very same rules.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from fulfillment_assets import settings
from fulfillment_assets.assets import RAW_ASSET_KEY
from fulfillment_assets.warehouse import Warehouse

RAW = settings.RESOURCE_NAME


@dataclass(frozen=True)
class RowRule:
    """A row breaks the rule where `condition` (SQL, `%s` parameters) is true."""

    name: str
    condition: str
    reason: str
    params: tuple[Any, ...] = ()


def variant_columns(columns: Collection[str], column: str) -> list[str]:
    """dlt's variant columns of `column` (e.g. customer_id__v_bigint): values of another type."""
    return sorted(name for name in columns if name.startswith(f"{column}__v_"))


def row_rules(columns: Collection[str]) -> list[RowRule]:
    """The row-level rules for a raw table with these columns (variant columns vary by data)."""
    statuses = settings.accepted_statuses()
    placeholders = ", ".join(["%s"] * len(statuses))

    def missing(column: str) -> str:
        # A value of the wrong type is a drift, reported by its own rule, not a null.
        return " AND ".join(
            [f"{column} IS NULL"] + [f"{v} IS NULL" for v in variant_columns(columns, column)]
        )

    rules = [
        RowRule("id_not_null", "id IS NULL", "id is null"),
        RowRule("customer_id_not_null", missing("customer_id"), "customer_id is null"),
        RowRule("order_status_not_null", missing("order_status"), "order_status is null"),
        RowRule(
            "order_status_accepted",
            f"order_status IS NOT NULL AND order_status NOT IN ({placeholders})",
            "order_status is not an accepted status",
            tuple(statuses),
        ),
    ]
    for column in settings.CONTRACT_COLUMNS:
        for variant in variant_columns(columns, column):
            data_type = variant.rsplit("__v_", 1)[1]
            rules.append(
                RowRule(f"{variant}_drift", f"{variant} IS NOT NULL", f"{column} is {data_type}")
            )
    return rules


def _offending(warehouse: Warehouse, condition: str, params: Sequence[Any]) -> dict[str, Any]:
    """Rows checked, offending rows and a sample of their ids, in one pass and one lookup."""
    ((checked, offending),) = warehouse.query(
        f"SELECT count(*), count(CASE WHEN {condition} THEN 1 END) FROM {{{RAW}}}", *params
    )
    sample = [
        row[0]
        for row in warehouse.query(
            f"SELECT id FROM {{{RAW}}} WHERE {condition} ORDER BY id LIMIT {settings.SAMPLE_IDS}",
            *params,
        )
    ]
    return {"checked": checked, "offending": offending, "sample": sample}


def _metadata(checked: int, offending: int, sample: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "rows_checked": MetadataValue.int(checked),
        "offending_rows": MetadataValue.int(offending),
        "offending_fraction": MetadataValue.float(offending / checked if checked else 0.0),
        "sample_offending_ids": MetadataValue.json(sample),
        **extra,
    }


NOTHING_LOADED = AssetCheckResult(
    passed=True, description="no rows loaded yet", metadata=_metadata(0, 0, [])
)


def _threshold_result(rule_name: str, warehouse: Warehouse) -> AssetCheckResult:
    columns = warehouse.columns(RAW)
    if not columns:
        return NOTHING_LOADED
    rule = next(rule for rule in row_rules(columns) if rule.name == rule_name)
    found = _offending(warehouse, rule.condition, rule.params)
    threshold = settings.CHECK_THRESHOLDS[rule_name]
    fraction = found["offending"] / found["checked"] if found["checked"] else 0.0
    severity = (
        AssetCheckSeverity.ERROR if fraction > threshold.error_above else AssetCheckSeverity.WARN
    )
    return AssetCheckResult(
        passed=fraction <= threshold.warn_above,
        severity=severity,
        description=f"{found['offending']} of {found['checked']} rows: {rule.reason}",
        metadata=_metadata(
            found["checked"],
            found["offending"],
            found["sample"],
            # Text, not numbers: Dagster would plot these constants run over run.
            thresholds=MetadataValue.text(
                f"WARN above {threshold.warn_above:.0%}, ERROR above {threshold.error_above:.0%}"
            ),
        ),
    )


@asset_check(
    asset=RAW_ASSET_KEY,
    blocking=True,
    description=(
        "`id`, `customer_id` and `order_status` exist with their declared types and "
        "nullability, and no value of another type was loaded for them (no dlt variant column "
        "such as `customer_id__v_bigint`). Each deviation is named."
    ),
)
def schema_contract(warehouse: Warehouse) -> AssetCheckResult:
    columns = warehouse.columns(RAW)
    if not columns:
        return NOTHING_LOADED
    stored = warehouse.stored_schema().get("tables", {}).get(RAW, {}).get("columns", {})
    deviations = []
    for name, hints in settings.CONTRACT_COLUMNS.items():
        column = stored.get(name)
        if name not in columns or column is None:
            deviations.append(f"{name} is missing")
            continue
        if column.get("data_type") != hints["data_type"]:
            deviations.append(f"{name} is {column.get('data_type')}, expected {hints['data_type']}")
        if column.get("nullable", True) != hints["nullable"]:
            expected = "nullable" if hints["nullable"] else "not null"
            deviations.append(f"{name} should be {expected}")
    drifted = [v for name in settings.CONTRACT_COLUMNS for v in variant_columns(columns, name)]
    condition = " OR ".join(f"{v} IS NOT NULL" for v in drifted) or "FALSE"
    found = _offending(warehouse, condition, ())
    for variant in drifted:
        ((count,),) = warehouse.query(f"SELECT count({variant}) FROM {{{RAW}}}")
        column, data_type = variant.rsplit("__v_", 1)
        deviations.append(f"{column} has {count} values of type {data_type} (column {variant})")
    return AssetCheckResult(
        passed=not deviations,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(deviations) or "schema as declared",
        metadata=_metadata(
            found["checked"],
            found["offending"],
            found["sample"],
            deviations=MetadataValue.json(deviations),
        ),
    )


def _threshold_check(rule_name: str, description: str) -> AssetChecksDefinition:
    """A blocking check of one row rule against its thresholds in settings.CHECK_THRESHOLDS."""

    @asset_check(asset=RAW_ASSET_KEY, name=rule_name, blocking=True, description=description)
    def _check(warehouse: Warehouse) -> AssetCheckResult:
        result = _threshold_result(rule_name, warehouse)
        if rule_name != "order_status_accepted":
            return result
        accepted = MetadataValue.json(list(settings.accepted_statuses()))
        return result._replace(metadata={**result.metadata, "accepted_statuses": accepted})

    return _check


customer_id_not_null = _threshold_check(
    "customer_id_not_null", "`customer_id` is not null (a record without the key counts as null)."
)
order_status_not_null = _threshold_check(
    "order_status_not_null", "`order_status` is not null (a record without the key counts as null)."
)
order_status_accepted = _threshold_check(
    "order_status_accepted",
    "`order_status` is one of the accepted statuses (FULFILLMENT_ACCEPTED_STATUSES).",
)


@asset_check(
    asset=RAW_ASSET_KEY,
    blocking=True,
    description=(
        "`id` is unique and not null in the table. Also reports records the API sent twice in "
        "the latest load (merged into one row, newest version kept) as a warning."
    ),
)
def id_unique_and_not_null(
    context: AssetCheckExecutionContext, warehouse: Warehouse
) -> AssetCheckResult:
    if not warehouse.columns(RAW):
        return NOTHING_LOADED
    ((checked, null_ids, duplicate_rows, last_load_rows),) = warehouse.query(
        f"SELECT count(*), count(*) - count(id), count(id) - count(DISTINCT id), "
        f"count(CASE WHEN _dlt_load_id = (SELECT max(_dlt_load_id) FROM {{{RAW}}}) THEN 1 END) "
        f"FROM {{{RAW}}}"
    )
    sample = [
        row[0]
        for row in warehouse.query(
            f"SELECT id FROM {{{RAW}}} GROUP BY id HAVING count(*) > 1 ORDER BY id "
            f"LIMIT {settings.SAMPLE_IDS}"
        )
    ]
    received = _rows_received_in_latest_load(context)
    duplicates_received = max(received - last_load_rows, 0) if received is not None else 0
    offending = null_ids + duplicate_rows
    if offending:
        severity, passed = AssetCheckSeverity.ERROR, False
        description = f"{duplicate_rows} duplicate rows and {null_ids} null ids in the table"
    elif duplicates_received:
        severity, passed = AssetCheckSeverity.WARN, False
        description = (
            f"the API sent {duplicates_received} records of the latest load a second time; "
            "merged into one row per id (newest version kept)"
        )
    else:
        severity, passed, description = AssetCheckSeverity.ERROR, True, "one row per id"
    return AssetCheckResult(
        passed=passed,
        severity=severity,
        description=description,
        metadata=_metadata(
            checked,
            offending,
            sample,
            null_ids=MetadataValue.int(null_ids),
            duplicate_rows=MetadataValue.int(duplicate_rows),
            duplicate_records_received_in_latest_load=MetadataValue.int(duplicates_received),
        ),
    )


def _rows_received_in_latest_load(context: AssetCheckExecutionContext) -> int | None:
    event = context.instance.get_latest_materialization_event(RAW_ASSET_KEY)
    materialization = event.asset_materialization if event else None
    if materialization is None:
        return None
    rows = materialization.metadata.get("rows_loaded")
    return int(rows.value) if rows is not None else 0


raw_table_checks = [
    schema_contract,
    customer_id_not_null,
    order_status_not_null,
    order_status_accepted,
    id_unique_and_not_null,
]
