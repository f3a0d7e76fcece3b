"""Records become Arrow tables with the declared types; a value of another type is kept in a
variant column, never coerced silently (pyarrow alone would turn True into 1.0 and 2.5 into 2)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest
from dagster import DagsterInstance
from dlt.common.libs.pyarrow import py_arrow_to_table_schema_columns

from fulfillment_assets import settings
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets.source import describe_fulfillment, page_to_arrow
from fulfillment_assets_tests.helpers import RAW_ONLY, materialize_all

CLEAN = {
    "id": 1,
    "customer_id": "C00001",
    "order_status": "shipped",
    "created_at": "2026-10-24T22:20:10Z",
    "updated_at": "2026-10-27T02:47:58Z",
    "amount": 905.35,
    "currency": "USD",
    "items_count": 2,
    "shipment": {"carrier": "DHL", "shipped_at": None},
}


def _two_records(**drift: Any) -> list[dict[str, Any]]:
    return [dict(CLEAN), {**CLEAN, "id": 2, **drift}]


def test_clean_records_get_the_declared_types() -> None:
    table = page_to_arrow(_two_records())

    assert {field.name: str(field.type) for field in table.schema} == {
        "id": "int64",
        "customer_id": "string",
        "order_status": "string",
        "created_at": "timestamp[us, tz=UTC]",
        "updated_at": "timestamp[us, tz=UTC]",
        "amount": "double",
        "currency": "string",
        "items_count": "int64",
        "shipment": "string",
    }
    assert table.column("shipment").to_pylist() == ['{"carrier":"DHL","shipped_at":null}'] * 2


@pytest.mark.parametrize(
    ("column", "value", "variant", "variant_type"),
    [
        ("customer_id", 12345, "customer_id__v_bigint", "int64"),
        ("order_status", True, "order_status__v_bool", "bool"),
        ("amount", True, "amount__v_bool", "bool"),
        ("amount", "905.35 USD", "amount__v_text", "string"),
        ("items_count", 2.5, "items_count__v_double", "double"),
        ("items_count", 2.0, "items_count__v_double", "double"),
        ("items_count", False, "items_count__v_bool", "bool"),
        ("created_at", "yesterday", "created_at__v_text", "string"),
        ("shipment", "DHL", "shipment__v_text", "string"),
    ],
)
def test_a_value_of_another_type_goes_to_a_variant_column(
    column: str, value: Any, variant: str, variant_type: str
) -> None:
    table = page_to_arrow(_two_records(**{column: value}))

    # The first record keeps its value in the declared column; the drifted one only in the variant.
    assert table.column(column).to_pylist()[1] is None
    assert table.column(column).to_pylist()[0] is not None
    assert str(table.schema.field(variant).type) == variant_type
    assert table.column(variant).to_pylist() == [None, value]


def test_fields_only_some_records_have_are_kept_in_order_of_appearance() -> None:
    page = [dict(CLEAN), {**CLEAN, "id": 2, "priority": 2}, {**CLEAN, "id": 3, "gift": True}]
    del page[2]["currency"]

    table = page_to_arrow(page)

    assert table.schema.names[-2:] == ["priority", "gift"]
    assert table.column("priority").to_pylist() == [None, 2, None]
    assert table.column("gift").to_pylist() == [None, None, True]
    assert table.column("currency").to_pylist() == ["USD", "USD", None]


def test_variant_columns_load_next_to_the_declared_ones(tmp_path: Path) -> None:
    table = page_to_arrow(_two_records(amount=True, items_count=2.5))
    pipeline = dlt.pipeline(
        pipeline_name="arrow_pages",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "arrow_pages.duckdb")),
        dataset_name="raw",
    )
    columns = {**settings.CONTRACT_COLUMNS, **settings.DOCUMENTED_COLUMNS}

    pipeline.run(
        dlt.resource([table], name="records", columns=columns), loader_file_format="parquet"
    ).raise_on_failed_jobs()

    with duckdb.connect(str(tmp_path / "arrow_pages.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT id, amount, amount__v_bool, items_count, items_count__v_double "
            "FROM raw.records ORDER BY id"
        ).fetchall()
    assert rows == [(1, 905.35, None, 2, None), (2, None, True, None, 2.5)]


def test_the_arrow_schema_agrees_with_the_resources_hints_but_for_json_as_text() -> None:
    table = page_to_arrow(_two_records())
    hinted = describe_fulfillment().resources[settings.RESOURCE_NAME].compute_table_schema()

    # What dlt's extractor compares: the hints the Arrow schema implies against the resource's.
    differing = {
        (name, hint, value, hinted["columns"][name][hint])  # type: ignore[literal-required]
        for name, column in py_arrow_to_table_schema_columns(table.schema).items()
        for hint, value in column.items()
        if hinted["columns"].get(name, {}).get(hint, value) != value
    }

    # JSON travels as JSON text (as dlt writes a json column to parquet); nothing else differs.
    assert differing == {("shipment", "data_type", "text", "json")}


def test_a_load_logs_no_warning_that_column_hints_differ(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A field the project does not declare, typed JSON, besides the declared `shipment`.
    demo_api.configure(records=300, extra_fields={"tags": ["gift", "fragile"]})
    # dlt sets its logger up (level, handler) when it first reads configuration, as building
    # the source does; set up, it keeps its records to itself (no propagation). At INFO it says
    # which hints differ, column by column.
    describe_fulfillment()
    dlt_logger = logging.getLogger("dlt")
    caplog.set_level(logging.INFO, logger="dlt")
    dlt_logger.addHandler(caplog.handler)
    try:
        assert materialize_all(instance, selection=RAW_ONLY).success
    finally:
        dlt_logger.removeHandler(caplog.handler)

    dlt_lines = [record.getMessage() for record in caplog.records if record.name == "dlt"]
    assert dlt_lines, "dlt's log was not captured"
    assert not [line for line in dlt_lines if "column hints were different" in line], dlt_lines
    differing = [line for line in dlt_lines if "when merging arrow schema on column" in line]
    # Only the JSON columns, whose Arrow type is text: nothing else disagrees with its hint.
    assert {line.split(" on column ")[1].split(".")[0] for line in differing} == {
        "shipment",
        "tags",
    }
    assert all("The hint data_type value json" in line for line in differing), differing
