"""Tables built on the raw table, in the destination, with SQL.

validated + rejected = raw: every raw row lands in exactly one of them, the rejected ones with the
reasons, so no record is silently dropped. The summary is what a person would chart.
"""

from typing import TypedDict

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    IntMetadataValue,
    MaterializeResult,
    MetadataValue,
    TableColumnLineage,
    asset,
    asset_check,
)

from fulfillment_assets import settings
from fulfillment_assets.contract import (
    OWNERS,
    RAW_ASSET_KEY,
    REJECTED,
    REJECTED_KEY,
    SUMMARY,
    SUMMARY_KEY,
    VALIDATED,
    VALIDATED_KEY,
)
from fulfillment_assets.ingest.deletes import not_deleted
from fulfillment_assets.ingest.walks import walk_in_progress
from fulfillment_assets.models.columns import (
    REJECTED_SCHEMA,
    SUMMARY_SCHEMA,
    VALIDATED_SCHEMA,
    described_schema,
    names,
    rejected_lineage,
    summary_lineage,
    validated_lineage,
)
from fulfillment_assets.models.sql import (
    RAW,
    rejected_select,
    summary_select,
    validated_select,
)
from fulfillment_assets.quality.check_results import rows_at_latest_materialization
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.run_liveness import RunLiveness


class _ModelAssetAttributes(TypedDict):
    """The keyword arguments every model asset shares, typed for `@asset(**...)`."""

    group_name: str
    kinds: set[str]
    owners: list[str]


MODEL_ASSET_ATTRIBUTES: _ModelAssetAttributes = {
    "group_name": settings.ASSET_GROUP,
    "kinds": {"sql", settings.destination_name()},
    "owners": OWNERS,
}


def _raw_columns(context: AssetExecutionContext, warehouse: Warehouse) -> dict[str, str]:
    """The raw table's columns; {} before anything was loaded. Fails if the table that the raw
    asset's latest materialization counted rows in cannot be found."""
    columns = warehouse.columns(RAW)
    if not columns and (rows := rows_at_latest_materialization(context.instance)):
        raise Failure(
            f"could not read the raw table {settings.DATASET_NAME}.{RAW} in the "
            f"{warehouse.destination_name()} destination, though its latest materialization "
            f"counted {rows} rows: check FULFILLMENT_DESTINATION and its credentials"
        )
    return columns


def _table_result(
    warehouse: Warehouse, table: str, lineage: TableColumnLineage, **metadata: MetadataValue
) -> MaterializeResult:
    """Row count, the columns with dlt's types and their descriptions, their lineage, and what
    the raw table held when the model was built (a full walk still going, or a whole one)."""
    ((rows,),) = warehouse.query(f"SELECT count(*) FROM {table}")
    walk = walk_in_progress(warehouse)
    built_from = (
        f"a partly loaded raw table: {walk.describe(walk.ledger.get('last_total'))}; the next "
        "fulfillment_ingest run resumes the walk"
        if walk
        else "the raw table as its latest complete load left it"
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": MetadataValue.int(rows),
            "built_from": MetadataValue.text(built_from),
            "dagster/column_schema": described_schema(warehouse.columns(table)),
            "dagster/column_lineage": lineage,
            "dagster/table_name": warehouse.table(table),
            **metadata,
        }
    )


@asset(
    key=VALIDATED_KEY,
    deps=[RAW_ASSET_KEY],
    tags={"layer": "model"},
    **MODEL_ASSET_ATTRIBUTES,
    metadata={
        "dagster/column_schema": VALIDATED_SCHEMA,
        "dagster/column_lineage": validated_lineage(names(VALIDATED_SCHEMA)),
    },
    description=(
        "Raw fulfillment orders that pass every row-level rule: id, customer_id and order_status "
        "present and of their declared types, order_status an accepted status."
    ),
)
def orders_validated(
    context: AssetExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
) -> MaterializeResult:
    raw_columns = _raw_columns(context, warehouse)
    if not raw_columns:
        context.log.info("the raw table does not exist yet: nothing to validate")
    warehouse.replace_table(VALIDATED, validated_select(raw_columns))
    return _table_result(warehouse, VALIDATED, validated_lineage(warehouse.columns(VALIDATED)))


@asset(
    key=REJECTED_KEY,
    deps=[RAW_ASSET_KEY],
    tags={"layer": "model"},
    **MODEL_ASSET_ATTRIBUTES,
    metadata={
        "dagster/column_schema": REJECTED_SCHEMA,
        "dagster/column_lineage": rejected_lineage(names(REJECTED_SCHEMA), names(VALIDATED_SCHEMA)),
    },
    description=(
        "Raw fulfillment orders that break at least one row-level rule, each with "
        "`rejection_reasons` listing every rule it breaks. validated + rejected = raw."
    ),
)
def orders_rejected(
    context: AssetExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
) -> MaterializeResult:
    raw_columns = _raw_columns(context, warehouse)
    if not raw_columns:
        context.log.info("the raw table does not exist yet: nothing rejected")
    warehouse.replace_table(REJECTED, rejected_select(raw_columns))
    raw_rows = 0
    if raw_columns:
        ((raw_rows,),) = warehouse.query(f"SELECT count(*) FROM {RAW}")
    lineage = rejected_lineage(warehouse.columns(REJECTED), raw_columns)
    result = _table_result(warehouse, REJECTED, lineage)
    # _table_result always sets the row count, as an int.
    assert result.metadata is not None
    row_count = result.metadata["dagster/row_count"]
    assert isinstance(row_count, IntMetadataValue) and row_count.value is not None
    rejected_rows = row_count.value
    return result._replace(
        metadata={
            **result.metadata,
            "rejected_fraction": MetadataValue.float(rejected_rows / raw_rows if raw_rows else 0.0),
        }
    )


@asset(
    key=SUMMARY_KEY,
    deps=[VALIDATED_KEY, REJECTED_KEY],
    tags={"layer": "mart"},
    **MODEL_ASSET_ATTRIBUTES,
    metadata={
        "dagster/column_schema": SUMMARY_SCHEMA,
        "dagster/column_lineage": summary_lineage(
            VALIDATED_KEY, REJECTED_KEY, names(VALIDATED_SCHEMA), names(REJECTED_SCHEMA)
        ),
    },
    description=(
        "Orders per day and order_status, with their total amount: validated orders by status, "
        "and rejected orders per day (`quality` = 'rejected'), ready to chart."
    ),
)
def orders_daily_summary(warehouse: Warehouse, run_liveness: RunLiveness) -> MaterializeResult:
    validated, rejected = warehouse.columns(VALIDATED), warehouse.columns(REJECTED)
    warehouse.replace_table(SUMMARY, summary_select(validated, rejected))
    lineage = summary_lineage(VALIDATED_KEY, REJECTED_KEY, validated, rejected)
    return _table_result(warehouse, SUMMARY, lineage)


@asset_check(
    asset=VALIDATED_KEY,
    additional_deps=[REJECTED_KEY, RAW_ASSET_KEY],
    blocking=True,
    description=(
        "validated + rejected + deleted = raw: every raw row the API still returns is in exactly "
        "one of the two tables."
    ),
)
def validated_plus_rejected_equals_raw(
    context: AssetCheckExecutionContext, warehouse: Warehouse, run_liveness: RunLiveness
) -> AssetCheckResult:
    if not warehouse.columns(RAW):
        if rows := rows_at_latest_materialization(context.instance):
            return AssetCheckResult(
                passed=False,
                severity=AssetCheckSeverity.ERROR,
                description=f"could not read the raw table {settings.DATASET_NAME}.{RAW}, "
                f"though its latest materialization counted {rows} rows",
            )
        return AssetCheckResult(passed=True, description="no rows loaded yet")
    # Rows the API no longer returns (see ingest/deletes.py) are in neither model.
    deleted_rows = f"SELECT count(*) FROM {RAW} WHERE NOT ({not_deleted(warehouse.columns(RAW))})"
    ((raw, validated, rejected, deleted, in_both),) = warehouse.query(
        f"SELECT (SELECT count(*) FROM {RAW}), (SELECT count(*) FROM {VALIDATED}), "
        f"(SELECT count(*) FROM {REJECTED}), ({deleted_rows}), "
        f"(SELECT count(*) FROM {VALIDATED} AS v JOIN {REJECTED} AS r ON v.id = r.id)"
    )
    return AssetCheckResult(
        passed=validated + rejected + deleted == raw and in_both == 0,
        description=f"{validated} validated + {rejected} rejected + {deleted} deleted vs {raw} "
        f"raw; {in_both} in both",
        metadata={
            "raw_rows": raw,
            "validated_rows": validated,
            "rejected_rows": rejected,
            "deleted_rows": deleted,
            "rows_in_both": in_both,
        },
    )


model_assets = [orders_validated, orders_rejected, orders_daily_summary]
model_checks = [validated_plus_rejected_equals_raw]
