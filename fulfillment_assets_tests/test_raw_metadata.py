"""What the raw table's page shows: definition metadata the UI can render (no library objects),
and load metadata without local file paths, with every column described."""

from __future__ import annotations

import json
from pathlib import Path

from dagster import (
    DagsterInstance,
    JsonMetadataValue,
    MetadataValue,
    TableSchema,
    TableSchemaMetadataValue,
)

from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.definitions import defs
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets_tests.helpers import RAW_ONLY, materialize_all

PLAIN = (str, int, float, bool, type(None), TableSchema, MetadataValue)


def test_the_raw_tables_definition_metadata_is_all_renderable() -> None:
    metadata = defs.resolve_asset_graph().get(RAW_ASSET_KEY).metadata

    assert not [key for key in metadata if key.startswith("dagster_dlt/")], list(metadata)
    assert all(isinstance(value, PLAIN) for value in metadata.values()), metadata
    columns = metadata["dagster/column_schema"].columns
    assert all(column.description for column in columns), columns
    assert "_dlt_load_id" in {column.name for column in columns}


def test_load_metadata_has_no_local_paths_and_every_column_described(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    result = materialize_all(instance, selection=RAW_ONLY)
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata

    # dlt's load info lists each load job with the path of its file in the working dir.
    assert "jobs" not in metadata
    text = json.dumps({key: str(value) for key, value in metadata.items()})
    assert str(isolated_environment) not in text and "dlt_pipelines" not in text, text
    load_jobs = metadata["load_jobs"]
    assert isinstance(load_jobs, JsonMetadataValue)
    jobs = load_jobs.data
    assert isinstance(jobs, list) and jobs and all("file_path" not in job for job in jobs), jobs
    assert {job["file_format"] for job in jobs} >= {"parquet"}

    schema = metadata["dagster/column_schema"]
    assert isinstance(schema, TableSchemaMetadataValue)
    columns = {column.name: column for column in schema.schema.columns}
    assert "_dlt_load_id" in columns
    for column in columns.values():
        assert column.description, column
        # Only hints that mean something to a reader, not dlt's bookkeeping.
        assert set(column.constraints.other) <= {
            "primary key",
            "merge key",
            "newest wins on merge",
        }, column
    assert columns["id"].constraints.other == ["primary key"]
    assert (columns["_dlt_load_id"].description or "").startswith(
        "The dlt load that last wrote the row"
    )


# dlt's own fields on a load's materialization, which the project's fields come before.
DLT_FIELDS = ("destination_type", "dataset_name", "first_run", "started_at", "load_jobs")
FULL_REFRESH = {"ops": {"fulfillment_ingest": {"config": {"full_refresh": True}}}}


def test_the_syncs_fields_come_first_with_rounded_shares_and_both_delete_counts_explained(
    demo_api: DemoApiServer, instance: DagsterInstance
) -> None:
    # 20 of 1002 customer ids are null: the share is 0.02, not 0.01996007984031936.
    demo_api.configure(records=1002)
    first = materialize_all(instance, selection=RAW_ONLY)
    demo_api.configure(records=1002, removed_ids={5, 9})
    second = materialize_all(instance, selection=RAW_ONLY, run_config=FULL_REFRESH)

    (event,) = first.get_asset_materialization_events()
    keys = list(event.materialization.metadata)
    assert keys[:3] == ["sync_mode", "records_received", "rows_marked_deleted"], keys
    first_dlt_field = min(keys.index(field) for field in DLT_FIELDS)
    ours = ["deletes_summary", "walk_summary", "dagster/row_count", "null_customer_id_fraction"]
    assert all(keys.index(field) < first_dlt_field for field in ours), keys
    metadata = event.materialization.metadata
    assert metadata["null_customer_id_count"].value == 20
    assert metadata["null_customer_id_fraction"].value == 0.02
    assert metadata["null_order_status_fraction"].value == 0.00998  # 10 of 1002
    assert metadata["deletes_summary"].value == (
        "this run marked none: its complete full walk found no order newly gone "
        "(rows_marked_deleted). The table holds 0 rows marked deleted in all, by this run and "
        "earlier ones (rows_marked_deleted_in_table): _deleted_at set, kept in the raw table, "
        "left out of the models."
    )

    (event,) = second.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["rows_marked_deleted"].value == 2
    assert metadata["rows_marked_deleted_in_table"].value == 2
    summary = str(metadata["deletes_summary"].value)
    assert summary.startswith("this run marked 2 rows deleted: orders its complete full walk")
