"""What the model tables' columns mean and where they come from: descriptions, types and
`dagster/column_lineage` for the model assets (`assets.py`).

Columns copied from the raw table keep the raw table's descriptions (`column_description`, one
place); only the columns the models compute are described here. Types are dlt's data types, as
the raw table shows them, whichever the destination.
"""

from collections.abc import Mapping

from dagster import AssetKey, TableColumn, TableColumnDep, TableColumnLineage, TableSchema

from fulfillment_assets import settings
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.ingest.columns import RAW_COLUMN_SCHEMA, column_description

# The columns the models compute, described once.
MODEL_COLUMN_DESCRIPTIONS = {
    "rejection_reasons": (
        "Every row-level rule the order breaks, separated by '; ' (e.g. 'customer_id is null; "
        "order_status is null')."
    ),
    "order_date": "The UTC day the orders were created (from `created_at`); NULL if unknown.",
    "quality": "'validated' for orders that pass every row-level rule, 'rejected' for the rest.",
    "orders": "Number of orders of that day, quality and status.",
    "amount_total": (
        "Sum of the orders' `amount` (as the API sends it, currencies not converted); NULL where "
        "the API sends no numeric amount."
    ),
}
# The summary's columns and their dlt types; `order_status` is the raw column's.
SUMMARY_COLUMN_TYPES = {
    "order_date": "date",
    "quality": "text",
    "order_status": "text",
    "orders": "bigint",
    "amount_total": "double",
}
# The raw columns the row-level rules read (see `quality/row_rules.py`), so `rejection_reasons`'s.
RULE_COLUMNS = tuple(settings.CONTRACT_COLUMNS)


def model_column_description(name: str) -> str:
    """A model column's description: its own if a model computes it, else the raw column's."""
    return MODEL_COLUMN_DESCRIPTIONS.get(name) or column_description(name)


def described_schema(columns: Mapping[str, str]) -> TableSchema:
    """A model table's schema from its columns (name -> dlt data type), every column described."""
    return TableSchema(
        columns=[
            TableColumn(name=name, type=data_type, description=model_column_description(name))
            for name, data_type in columns.items()
        ]
    )


# The raw columns the project knows of, with their dlt types: what the models copy before any run.
_KNOWN_RAW_COLUMNS = {
    column.name: column.type
    for column in RAW_COLUMN_SCHEMA.columns
    if column.name in {*settings.CONTRACT_COLUMNS, *settings.DOCUMENTED_COLUMNS}
}
VALIDATED_SCHEMA = described_schema(_KNOWN_RAW_COLUMNS)
REJECTED_SCHEMA = described_schema({**_KNOWN_RAW_COLUMNS, "rejection_reasons": "text"})
SUMMARY_SCHEMA = described_schema(SUMMARY_COLUMN_TYPES)


def names(schema: TableSchema) -> list[str]:
    """The column names of a schema, in order."""
    return [column.name for column in schema.columns]


def copied_lineage(
    columns: Mapping[str, str] | list[str], source: AssetKey
) -> dict[str, list[TableColumnDep]]:
    """Each column that a model copies from `source` depends on the column of the same name."""
    return {name: [TableColumnDep(asset_key=source, column_name=name)] for name in columns}


def validated_lineage(columns: Mapping[str, str] | list[str]) -> TableColumnLineage:
    """orders_validated's columns are the raw table's, copied."""
    return TableColumnLineage(deps_by_column=copied_lineage(columns, RAW_ASSET_KEY))


def rejected_lineage(
    columns: Mapping[str, str] | list[str], raw_columns: Mapping[str, str] | list[str]
) -> TableColumnLineage:
    """orders_rejected's columns are the raw table's, copied; `rejection_reasons` is computed from
    the columns the row-level rules read (the contract columns and their variant columns)."""
    copied = [name for name in columns if name != "rejection_reasons"]
    rule_columns = [
        name
        for name in raw_columns
        if name in RULE_COLUMNS or name.rsplit("__v_", 1)[0] in RULE_COLUMNS and "__v_" in name
    ]
    deps = copied_lineage(copied, RAW_ASSET_KEY)
    if "rejection_reasons" in columns:
        deps["rejection_reasons"] = [
            TableColumnDep(asset_key=RAW_ASSET_KEY, column_name=name) for name in rule_columns
        ]
    return TableColumnLineage(deps_by_column=deps)


def summary_lineage(
    validated_key: AssetKey,
    rejected_key: AssetKey,
    validated: Mapping[str, str] | list[str],
    rejected: Mapping[str, str] | list[str],
) -> TableColumnLineage:
    """orders_daily_summary's columns from the two tables' columns they are computed from (those
    the tables have: the summary gives NULL for a missing one). `quality` is a constant: it says
    which table a row counts, so it depends on neither's columns."""

    def from_both(column: str) -> list[TableColumnDep]:
        return [
            TableColumnDep(asset_key=key, column_name=column)
            for key, columns in ((validated_key, validated), (rejected_key, rejected))
            if column in columns
        ]

    deps = {
        "order_date": from_both("created_at"),
        "order_status": from_both("order_status")[:1] if "order_status" in validated else [],
        "orders": from_both("id"),
        "amount_total": from_both("amount"),
    }
    return TableColumnLineage(deps_by_column={name: dep for name, dep in deps.items() if dep})
