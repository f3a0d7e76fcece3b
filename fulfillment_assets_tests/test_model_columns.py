"""Tables that explain themselves: every column of every asset described, before any run (the
specs) and after one (the materializations), in dlt's type vocabulary on every destination, and
the models' `dagster/column_lineage` linking their columns to the columns they come from."""

from __future__ import annotations

import pytest
from dagster import (
    AssetKey,
    AssetSpec,
    DagsterInstance,
    TableColumnDep,
    TableColumnLineage,
    TableSchema,
)

from fulfillment_assets.contract import RAW_ASSET_KEY, REJECTED_KEY, SUMMARY_KEY, VALIDATED_KEY
from fulfillment_assets.definitions import defs
from fulfillment_assets.ingest.columns import column_description
from fulfillment_assets_tests.helpers import materialize_all

MODEL_KEYS = (VALIDATED_KEY, REJECTED_KEY, SUMMARY_KEY)
# dlt's data types (dlt.common.schema.typing.TDataType): the raw table shows these.
DLT_TYPES = {
    "text",
    "double",
    "bool",
    "timestamp",
    "bigint",
    "binary",
    "json",
    "decimal",
    "wei",
    "date",
    "time",
}
SUMMARY_COLUMNS = {"order_date", "quality", "order_status", "orders", "amount_total"}


def _specs() -> dict[AssetKey, AssetSpec]:
    return {spec.key: spec for spec in defs.resolve_all_asset_specs()}


def _deps(lineage: TableColumnLineage, column: str) -> set[tuple[str, str]]:
    return {(dep.asset_key.path[-1], dep.column_name) for dep in lineage.deps_by_column[column]}


def test_every_column_of_every_asset_spec_is_described_with_a_dlt_type() -> None:
    specs = _specs()
    with_schema = {key for key, spec in specs.items() if "dagster/column_schema" in spec.metadata}
    # Every table: the raw one and the three models (the API is not a table).
    assert with_schema == {RAW_ASSET_KEY, *MODEL_KEYS}
    for key in with_schema:
        schema: TableSchema = specs[key].metadata["dagster/column_schema"]
        assert schema.columns, key
        for column in schema.columns:
            assert column.description, (key, column.name)
            assert column.type in DLT_TYPES, (key, column.name, column.type)
    summary = specs[SUMMARY_KEY].metadata["dagster/column_schema"]
    assert {column.name for column in summary.columns} == SUMMARY_COLUMNS
    rejected = specs[REJECTED_KEY].metadata["dagster/column_schema"]
    descriptions = {column.name: column.description for column in rejected.columns}
    # Copied columns reuse the raw table's description; computed ones have their own.
    assert descriptions["customer_id"] == column_description("customer_id")
    assert "rule" in descriptions["rejection_reasons"]


def test_model_specs_declare_column_lineage() -> None:
    specs = _specs()
    for key in MODEL_KEYS:
        lineage = specs[key].metadata["dagster/column_lineage"]
        assert isinstance(lineage, TableColumnLineage), key
    summary = specs[SUMMARY_KEY].metadata["dagster/column_lineage"]
    assert _deps(summary, "amount_total") == {
        ("orders_validated", "amount"),
        ("orders_rejected", "amount"),
    }


@pytest.mark.every_destination
def test_a_materialization_describes_every_column_in_dlt_types_with_lineage(
    demo_api: object, instance: DagsterInstance
) -> None:
    materialize_all(instance)

    for key in (RAW_ASSET_KEY, *MODEL_KEYS):
        event = instance.get_latest_materialization_event(key)
        assert event is not None and event.asset_materialization is not None, key
        metadata = event.asset_materialization.metadata
        schema = metadata["dagster/column_schema"].value
        assert isinstance(schema, TableSchema), key
        assert schema.columns, key
        for column in schema.columns:
            assert column.description, (key, column.name)
            assert column.type in DLT_TYPES, (key, column.name, column.type)
        if key == RAW_ASSET_KEY:
            continue
        lineage = metadata["dagster/column_lineage"].value
        assert isinstance(lineage, TableColumnLineage)
        # Every column of the table has its lineage except the summary's constant `quality`.
        assert set(lineage.deps_by_column) == {c.name for c in schema.columns} - {"quality"}, key

    validated = _latest_lineage(instance, VALIDATED_KEY)
    assert validated.deps_by_column["customer_id"] == [
        TableColumnDep(asset_key=RAW_ASSET_KEY, column_name="customer_id")
    ]
    rejected = _latest_lineage(instance, REJECTED_KEY)
    assert {"id", "customer_id", "order_status"} <= {
        column for _, column in _deps(rejected, "rejection_reasons")
    }
    summary = _latest_lineage(instance, SUMMARY_KEY)
    assert _deps(summary, "amount_total") == {
        ("orders_validated", "amount"),
        ("orders_rejected", "amount"),
    }
    assert _deps(summary, "order_date") == {
        ("orders_validated", "created_at"),
        ("orders_rejected", "created_at"),
    }
    assert _deps(summary, "order_status") == {("orders_validated", "order_status")}


def _latest_lineage(instance: DagsterInstance, key: AssetKey) -> TableColumnLineage:
    event = instance.get_latest_materialization_event(key)
    assert event is not None and event.asset_materialization is not None
    lineage = event.asset_materialization.metadata["dagster/column_lineage"].value
    assert isinstance(lineage, TableColumnLineage)
    return lineage
