"""Helpers the tests share, apart from the fixtures in `conftest.py`: the test API key and
retry factor, the project's check names, the raw-only selection, materializing the definitions
in process and reading the test's warehouse through the project's own `Warehouse`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from dagster import (
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    DagsterInstance,
    ExecuteInProcessResult,
    SourceAsset,
    materialize,
)

from fulfillment_assets.demo_api import Dataset, DemoApiServer
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.sql import literal

# A key nobody would type by accident, so a scan for it finds only leaks.
TEST_API_KEY = "sk_test_FULFILLMENT_7d9c1e5b42"
# Retries wait factor * 2**n seconds; the seed's factor 2 would make fault tests crawl.
TEST_BACKOFF_FACTOR = "0.02"


# Every check the project defines: ten on the raw table, one on the models.
CHECK_NAMES = {
    "schema_contract",
    "customer_id_not_null",
    "order_status_not_null",
    "order_status_accepted",
    "id_unique_and_not_null",
    "validated_plus_rejected_equals_raw",
    "field_names_distinct",
    "updated_at_never_goes_back",
    "values_of_their_column_type",
    "walk_complete",
    "no_rows_marked_deleted",
}
# Just the ingestion: for tests about loading, where the checks and models only cost time.
RAW_ONLY = AssetSelection.assets(["fulfillment", "fulfillment_data"]).without_checks()


def materialize_all(
    instance: DagsterInstance,
    *,
    raise_on_error: bool = True,
    selection: Any = None,
    run_config: Any = None,
) -> ExecuteInProcessResult:
    """Materializes the project's assets (all of them by default) as the definitions declare."""
    from fulfillment_assets.definitions import defs

    return materialize(
        # Definitions may also hold cacheable assets, which materialize does not take (none here).
        [a for a in defs.assets or [] if isinstance(a, AssetsDefinition | AssetSpec | SourceAsset)]
        + list(defs.asset_checks or []),
        resources=defs.resources,
        instance=instance,
        raise_on_error=raise_on_error,
        selection=selection,
        run_config=run_config,
    )


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of one statement (DuckDB's dialect, `%s` values) in the test's warehouse, read
    through the project's own `Warehouse`, whichever the destination. `data_dir` is kept for the
    callers written when this read the DuckDB file."""
    for param in params:
        sql = sql.replace("%s", literal(param), 1)
    return Warehouse().query(sql)


def table_snapshot(data_dir: Path) -> list[tuple[Any, ...]]:
    """Every row of the raw table, in id order, without dlt's load bookkeeping columns."""
    return query(
        data_dir,
        "SELECT id, customer_id, order_status, updated_at, amount "
        "FROM fulfillment.fulfillment_data ORDER BY id",
    )


def api_rows(api: DemoApiServer) -> list[tuple]:
    """What the API serves, one row per id, in the raw table's snapshot shape."""
    dataset = Dataset(api.options)
    rows = []
    for record_id in range(1, dataset.n + 1):
        record = dataset.record(record_id)
        rows.append(
            (
                record["id"],
                record.get("customer_id"),
                record.get("order_status"),
                datetime.fromisoformat(record["updated_at"]),
                record["amount"],
            )
        )
    return rows


def failure_message(result: ExecuteInProcessResult) -> str:
    """The first failed step's error, with every cause, as the UI shows it."""
    failures = [event for event in result.all_events if event.is_step_failure]
    assert failures, "expected a failed step"
    error = failures[0].step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def requested_offsets(api: DemoApiServer) -> list[int]:
    """The offsets of the pages the API was asked for, in the order asked."""
    return [request.offset for request in api.requests if request.offset is not None]
