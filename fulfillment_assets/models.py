"""Tables built on the raw table, in the destination, with SQL.

validated + rejected = raw: every raw row lands in exactly one of them, the rejected ones with the
reasons, so no record is silently dropped. The summary is what a person would chart.
"""

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
    asset_check,
)

from fulfillment_assets import settings
from fulfillment_assets.assets import OWNERS, RAW_ASSET_KEY
from fulfillment_assets.checks import RowRule, row_rules
from fulfillment_assets.warehouse import Warehouse

RAW = settings.RESOURCE_NAME
VALIDATED = "orders_validated"
REJECTED = "orders_rejected"
SUMMARY = "orders_daily_summary"
VALIDATED_KEY = AssetKey([settings.DATASET_NAME, VALIDATED])
REJECTED_KEY = AssetKey([settings.DATASET_NAME, REJECTED])
SUMMARY_KEY = AssetKey([settings.DATASET_NAME, SUMMARY])
# The columns the models read, for the empty tables built before the API ever sent a record.
NO_ORDERS = (
    "CAST(NULL AS BIGINT) AS id, CAST(NULL AS VARCHAR) AS customer_id, "
    "CAST(NULL AS VARCHAR) AS order_status, CAST(NULL AS TIMESTAMP) AS created_at, "
    "CAST(NULL AS DOUBLE) AS amount"
)
MODEL_ASSET_ATTRIBUTES = {
    "group_name": settings.ASSET_GROUP,
    "kinds": {"sql", settings.destination_name()},
    "owners": OWNERS,
}


def _data_columns(raw_columns: dict[str, str]) -> list[str]:
    """The raw table's data columns: no dlt bookkeeping, no variant columns (a rule covers them)."""
    return [name for name in raw_columns if not name.startswith("_dlt_") and "__v_" not in name]


def _breaks_any(rules: list[RowRule]) -> str:
    return " OR ".join(f"COALESCE({rule.condition}, FALSE)" for rule in rules)


def _params(rules: list[RowRule]) -> tuple:
    return tuple(param for rule in rules for param in rule.params)


def _table_result(warehouse: Warehouse, table: str, **metadata: object) -> MaterializeResult:
    ((rows,),) = warehouse.query(f"SELECT count(*) FROM {{{table}}}")
    schema = TableSchema(
        columns=[
            TableColumn(name, data_type) for name, data_type in warehouse.columns(table).items()
        ]
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": MetadataValue.int(rows),
            "dagster/column_schema": schema,
            "dagster/table_name": warehouse.table(table),
            **metadata,
        }
    )


@asset(
    key=VALIDATED_KEY,
    deps=[RAW_ASSET_KEY],
    tags={"layer": "model"},
    **MODEL_ASSET_ATTRIBUTES,
    description=(
        "Raw fulfillment orders that pass every row-level rule: id, customer_id and order_status "
        "present and of their declared types, order_status an accepted status."
    ),
)
def orders_validated(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    raw_columns = warehouse.columns(RAW)
    if not raw_columns:
        context.log.info("the raw table does not exist yet: nothing to validate")
        warehouse.replace_table(VALIDATED, f"SELECT {NO_ORDERS} WHERE FALSE")
        return _table_result(warehouse, VALIDATED)
    rules = row_rules(raw_columns)
    select = (
        f"SELECT {', '.join(_data_columns(raw_columns))} FROM {{{RAW}}} "
        f"WHERE NOT ({_breaks_any(rules)})"
    )
    warehouse.replace_table(VALIDATED, select, *_params(rules))
    return _table_result(warehouse, VALIDATED)


@asset(
    key=REJECTED_KEY,
    deps=[RAW_ASSET_KEY],
    tags={"layer": "model"},
    **MODEL_ASSET_ATTRIBUTES,
    description=(
        "Raw fulfillment orders that break at least one row-level rule, each with "
        "`rejection_reasons` listing every rule it breaks. validated + rejected = raw."
    ),
)
def orders_rejected(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    raw_columns = warehouse.columns(RAW)
    if not raw_columns:
        context.log.info("the raw table does not exist yet: nothing rejected")
        warehouse.replace_table(
            REJECTED, f"SELECT {NO_ORDERS}, CAST(NULL AS VARCHAR) AS rejection_reasons WHERE FALSE"
        )
        return _table_result(warehouse, REJECTED, rejected_fraction=0.0)
    rules = row_rules(raw_columns)
    reasons = ", ".join(
        f"CASE WHEN COALESCE({rule.condition}, FALSE) THEN '{rule.reason}' END" for rule in rules
    )
    drifted = [name for name in raw_columns if "__v_" in name]
    select = (
        f"SELECT {', '.join(_data_columns(raw_columns) + drifted)}, "
        f"concat_ws('; ', {reasons}) AS rejection_reasons "
        f"FROM {{{RAW}}} WHERE {_breaks_any(rules)}"
    )
    # The reasons' CASE conditions come first in the statement, then the WHERE's.
    warehouse.replace_table(REJECTED, select, *_params(rules), *_params(rules))
    ((raw_rows,),) = warehouse.query(f"SELECT count(*) FROM {{{RAW}}}")
    result = _table_result(warehouse, REJECTED)
    rejected_rows = result.metadata["dagster/row_count"].value
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
    description=(
        "Orders per day and order_status, with their total amount: validated orders by status, "
        "and rejected orders per day (`quality` = 'rejected'), ready to chart."
    ),
)
def orders_daily_summary(warehouse: Warehouse) -> MaterializeResult:
    select = (
        "SELECT CAST(created_at AS DATE) AS order_date, 'validated' AS quality, order_status, "
        "count(*) AS orders, sum(amount) AS amount_total "
        f"FROM {{{VALIDATED}}} GROUP BY 1, 2, 3 "
        "UNION ALL "
        "SELECT CAST(created_at AS DATE), 'rejected', NULL, count(*), sum(amount) "
        f"FROM {{{REJECTED}}} GROUP BY 1, 2, 3"
    )
    warehouse.replace_table(SUMMARY, select)
    return _table_result(warehouse, SUMMARY)


@asset_check(
    asset=VALIDATED_KEY,
    additional_deps=[REJECTED_KEY, RAW_ASSET_KEY],
    blocking=True,
    description="validated + rejected = raw: every raw row is in exactly one of the two tables.",
)
def validated_plus_rejected_equals_raw(warehouse: Warehouse) -> AssetCheckResult:
    if not warehouse.columns(RAW):
        return AssetCheckResult(passed=True, description="no rows loaded yet")
    ((raw, validated, rejected, in_both),) = warehouse.query(
        f"SELECT (SELECT count(*) FROM {{{RAW}}}), (SELECT count(*) FROM {{{VALIDATED}}}), "
        f"(SELECT count(*) FROM {{{REJECTED}}}), "
        f"(SELECT count(*) FROM {{{VALIDATED}}} v JOIN {{{REJECTED}}} r ON v.id = r.id)"
    )
    return AssetCheckResult(
        passed=validated + rejected == raw and in_both == 0,
        description=f"{validated} validated + {rejected} rejected vs {raw} raw; {in_both} in both",
        metadata={
            "raw_rows": raw,
            "validated_rows": validated,
            "rejected_rows": rejected,
            "rows_in_both": in_both,
        },
    )


model_assets = [orders_validated, orders_rejected, orders_daily_summary]
model_checks = [validated_plus_rejected_equals_raw]
