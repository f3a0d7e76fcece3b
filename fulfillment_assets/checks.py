"""Asset checks on the raw table, each one SQL run inside the destination.

Every check reports the rows it checked, the offending rows (count and fraction) and up to
`settings.SAMPLE_IDS` offending ids. The row-level rules are defined once, here, and the
validated / rejected tables in `models.py` are built from the very same rules. A check never
passes on data it could not read: when the raw asset's latest materialization counted rows and
the table or a column the check needs is not found, it fails with ERROR saying so.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    DagsterInstance,
    IntMetadataValue,
    MetadataValue,
    asset_check,
)

from fulfillment_assets import history, settings
from fulfillment_assets.assets import RAW_ASSET_KEY
from fulfillment_assets.sql import literals
from fulfillment_assets.warehouse import Warehouse

RAW = settings.RESOURCE_NAME


@dataclass(frozen=True)
class RowRule:
    """A row breaks the rule where `condition` (SQL of the project's dialect) is true."""

    name: str
    condition: str
    reason: str


def variant_columns(columns: Collection[str], column: str) -> list[str]:
    """dlt's variant columns of `column` (e.g. customer_id__v_bigint): values of another type."""
    return sorted(name for name in columns if name.startswith(f"{column}__v_"))


def row_rules(columns: Collection[str]) -> list[RowRule]:
    """The row-level rules for a raw table with these columns (variant columns vary by data).

    Statuses are judged only against a configured set (FULFILLMENT_ACCEPTED_STATUSES): the API's
    statuses are not stated anywhere, so without the setting no status rejects a row.
    """

    def missing(column: str) -> str:
        # A value of the wrong type is a drift, reported by its own rule, not a null.
        return " AND ".join(
            [f"{column} IS NULL"] + [f"{v} IS NULL" for v in variant_columns(columns, column)]
        )

    rules = [
        RowRule("id_not_null", "id IS NULL", "id is null"),
        RowRule("customer_id_not_null", missing("customer_id"), "customer_id is null"),
        RowRule("order_status_not_null", missing("order_status"), "order_status is null"),
    ]
    accepted = settings.accepted_statuses()
    if accepted:
        rules.append(
            RowRule(
                "order_status_accepted",
                f"order_status IS NOT NULL AND order_status NOT IN ({literals(accepted)})",
                "order_status is not an accepted status",
            )
        )
    for column in settings.CONTRACT_COLUMNS:
        for variant in variant_columns(columns, column):
            data_type = variant.rsplit("__v_", 1)[1]
            rules.append(
                RowRule(f"{variant}_drift", f"{variant} IS NOT NULL", f"{column} is {data_type}")
            )
    return rules


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
        "sample_offending_ids": MetadataValue.json(sample),
        **extra,
    }


NOTHING_LOADED = AssetCheckResult(
    passed=True, description="no rows loaded yet", metadata=check_metadata(0, 0, [])
)


def rows_at_latest_materialization(instance: DagsterInstance) -> int:
    """Rows the raw table held after its latest materialization (0 if never materialized)."""
    event = instance.get_latest_materialization_event(RAW_ASSET_KEY)
    materialization = event.asset_materialization if event else None
    rows = materialization.metadata.get("dagster/row_count") if materialization else None
    # The raw asset records its row count as an int (assets.py).
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


def cannot_read(reason: str) -> AssetCheckResult:
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=f"could not read the data: {reason}",
        metadata=check_metadata(0, 0, []),
    )


def _threshold_result(rule_name: str, warehouse: Warehouse, columns: dict) -> AssetCheckResult:
    rule = next(rule for rule in row_rules(columns) if rule.name == rule_name)
    found = offending(warehouse, rule.condition)
    threshold = settings.CHECK_THRESHOLDS[rule_name]
    fraction = found["offending"] / found["checked"] if found["checked"] else 0.0
    severity = (
        AssetCheckSeverity.ERROR if fraction > threshold.error_above else AssetCheckSeverity.WARN
    )
    return AssetCheckResult(
        passed=fraction <= threshold.warn_above,
        severity=severity,
        description=f"{found['offending']} of {found['checked']} rows: {rule.reason}",
        metadata=check_metadata(
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
        "nullability, and the table holds no value of another type for them (in a dlt variant "
        "column such as `customer_id__v_bigint`). Each deviation is named; a drift whose values "
        "are gone is reported as cleared, with when it was last seen, and does not fail."
    ),
)
def schema_contract(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
    reason = unreadable(context.instance, warehouse, ())
    if reason:
        return cannot_read(reason)
    if reason == "":
        return NOTHING_LOADED
    columns = warehouse.columns(RAW)
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
    # A variant column stays once dlt made it: judge the values it holds now, not that it exists.
    variants = [v for name in settings.CONTRACT_COLUMNS for v in variant_columns(columns, name)]
    values: dict[str, int] = {}
    if variants:
        counts = warehouse.query(f"SELECT {', '.join(f'count({v})' for v in variants)} FROM {RAW}")
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
    condition = " OR ".join(f"{v} IS NOT NULL" for v, n in values.items() if n) or "FALSE"
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


def _discovered_statuses_result(warehouse: Warehouse) -> AssetCheckResult:
    """No statuses configured: learn them on the first load, warn about new ones later."""
    counts = history.status_counts(warehouse)
    known = history.known_statuses(warehouse)
    new = {status: rows for status, rows in counts.items() if status not in known}
    history.remember_statuses(warehouse, new)
    ((checked,),) = warehouse.query(f"SELECT count(*) FROM {RAW}")
    listed = ", ".join(f"{status} ({rows} rows)" for status, rows in new.items())
    if not known:
        passed, description = True, f"first load: statuses recorded as known: {listed or 'none'}"
    elif new:
        passed = False
        description = f"{len(new)} status(es) never seen before: {listed}"
    else:
        passed, description = True, f"all {len(counts)} statuses were seen before"
    first_seen = not known
    new_rows = 0 if first_seen else sum(new.values())
    sample = []
    if new_rows:
        condition = f"order_status IN ({literals(new)})"
        sample = offending(warehouse, condition)["sample"]
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.WARN,
        description=description,
        metadata=check_metadata(
            checked,
            new_rows,
            sample,
            status_counts=MetadataValue.json(counts),
            known_statuses=MetadataValue.json(sorted(known | set(counts))),
            new_statuses=MetadataValue.json({} if first_seen else new),
            accepted_statuses=MetadataValue.text(
                "not configured (FULFILLMENT_ACCEPTED_STATUSES): statuses are learned"
            ),
        ),
    )


def _threshold_check(rule_name: str, column: str, description: str) -> AssetChecksDefinition:
    """A blocking check of one row rule against its thresholds in settings.CHECK_THRESHOLDS."""

    @asset_check(asset=RAW_ASSET_KEY, name=rule_name, blocking=True, description=description)
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        reason = unreadable(context.instance, warehouse, ("id", column))
        if reason:
            return cannot_read(reason)
        if reason == "":
            return NOTHING_LOADED
        columns = warehouse.columns(RAW)
        if rule_name == "order_status_accepted" and not settings.accepted_statuses():
            return _discovered_statuses_result(warehouse)
        result = _threshold_result(rule_name, warehouse, columns)
        if rule_name != "order_status_accepted":
            return result
        accepted = MetadataValue.json(list(settings.accepted_statuses() or ()))
        counts = MetadataValue.json(history.status_counts(warehouse))
        return result._replace(
            metadata={**result.metadata, "accepted_statuses": accepted, "status_counts": counts}
        )

    return _check


customer_id_not_null = _threshold_check(
    "customer_id_not_null",
    "customer_id",
    "`customer_id` is not null (a record without the key counts as null).",
)
order_status_not_null = _threshold_check(
    "order_status_not_null",
    "order_status",
    "`order_status` is not null (a record without the key counts as null).",
)
order_status_accepted = _threshold_check(
    "order_status_accepted",
    "order_status",
    "With FULFILLMENT_ACCEPTED_STATUSES set: `order_status` is one of those statuses (WARN / "
    "ERROR thresholds). Without it: the first load records the statuses seen as known, a later "
    "status never seen before is a WARN naming it and its row count; never blocks.",
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
    reason = unreadable(context.instance, warehouse, ("id", "_dlt_load_id"))
    if reason:
        return cannot_read(reason)
    if reason == "":
        return NOTHING_LOADED
    ((checked, null_ids, duplicate_rows, last_load_rows),) = warehouse.query(
        "SELECT count(*), count(*) - count(id), count(id) - count(DISTINCT id), "
        f"count(CASE WHEN _dlt_load_id = (SELECT max(_dlt_load_id) FROM {RAW}) THEN 1 END) "
        f"FROM {RAW}"
    )
    sample = [
        row[0]
        for row in warehouse.query(
            f"SELECT id FROM {RAW} GROUP BY id HAVING count(*) > 1 ORDER BY id "
            f"LIMIT {settings.SAMPLE_IDS}"
        )
    ]
    received = _rows_received_in_latest_load(context)
    duplicates_received = max(received - last_load_rows, 0) if received is not None else 0
    found = null_ids + duplicate_rows
    if found:
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
        metadata=check_metadata(
            checked,
            found,
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
