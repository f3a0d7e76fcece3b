"""Asset checks on the raw table, each one SQL run inside the destination.

The row-level rules are in `row_rules.py` (shared with the models), what every check reports and
what it says when it cannot read the table in `check_results.py`, the schema contract in
`schema_checks.py`; `raw_table_checks` lists them all.
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from fulfillment_assets import settings
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.display import LISTED_VALUES, listed, shown, shown_counts
from fulfillment_assets.quality import history
from fulfillment_assets.quality.check_results import (
    check_metadata,
    latest_raw_metadata,
    offending,
    unjudgeable,
)
from fulfillment_assets.quality.row_rules import row_rules
from fulfillment_assets.quality.schema_checks import schema_contract
from fulfillment_assets.settings import LOAD_ID
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.run_liveness import RunLiveness
from fulfillment_assets.warehouse.sql import literals

RAW = settings.RESOURCE_NAME


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


def _discovered_statuses_result(warehouse: Warehouse) -> AssetCheckResult:
    """No statuses configured: learn them on the first load, warn about new ones later."""
    counts = history.status_counts(warehouse)
    known = history.known_statuses(warehouse)
    new = {status: rows for status, rows in counts.items() if status not in known}
    history.remember_statuses(warehouse, new)
    ((checked,),) = warehouse.query(f"SELECT count(*) FROM {RAW}")
    # Statuses are the API's text: quoted bounded and escaped, at most LISTED_VALUES of them.
    statuses = listed([f"{shown(status)} ({rows} rows)" for status, rows in new.items()])
    if not known:
        passed = True
        description = f"first load: statuses recorded as known: {statuses or 'none'}"
    elif new:
        passed = False
        description = f"{len(new)} status(es) never seen before: {statuses}"
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
            status_counts=MetadataValue.json(shown_counts(counts)),
            known_statuses=MetadataValue.json(
                [shown(status) for status in sorted(known | set(counts))[:LISTED_VALUES]]
            ),
            new_statuses=MetadataValue.json({} if first_seen else shown_counts(new)),
            accepted_statuses=MetadataValue.text(
                "not configured (FULFILLMENT_ACCEPTED_STATUSES): statuses are learned"
            ),
        ),
    )


def _threshold_check(rule_name: str, column: str, description: str) -> AssetChecksDefinition:
    """A blocking check of one row rule against its thresholds in settings.CHECK_THRESHOLDS."""

    @asset_check(asset=RAW_ASSET_KEY, name=rule_name, blocking=True, description=description)
    def _check(
        context: AssetCheckExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
    ) -> AssetCheckResult:
        if early := unjudgeable(context.instance, warehouse, ("id", column)):
            return early
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
    context: AssetCheckExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
) -> AssetCheckResult:
    if early := unjudgeable(context.instance, warehouse, ("id", LOAD_ID)):
        return early
    ((checked, null_ids, duplicate_rows, last_load_rows),) = warehouse.query(
        "SELECT count(*), count(*) - count(id), count(id) - count(DISTINCT id), "
        f"count(CASE WHEN {LOAD_ID} = (SELECT max({LOAD_ID}) FROM {RAW}) THEN 1 END) "
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
    metadata = latest_raw_metadata(context.instance)
    if metadata is None:
        return None
    rows = metadata.get("rows_loaded")
    return int(rows.value) if rows is not None else 0


raw_table_checks = [
    schema_contract,
    customer_id_not_null,
    order_status_not_null,
    order_status_accepted,
    id_unique_and_not_null,
]
