"""Real parts for every test: the demo API on an ephemeral loopback port, a DuckDB file and dlt
working dir in a tmp dir, and a Dagster instance of the test's own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import (
    AssetSelection,
    DagsterInstance,
    ExecuteInProcessResult,
    instance_for_test,
    materialize,
)

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer

# A key nobody would type by accident, so a scan for it finds only leaks.
TEST_API_KEY = "sk_test_FULFILLMENT_7d9c1e5b42"
# Retries wait factor * 2**n seconds; the seed's factor 2 would make fault tests crawl.
TEST_BACKOFF_FACTOR = "0.02"


# Every check the project defines: the five on the raw table, the field-name warning and the one
# on the models.
CHECK_NAMES = {
    "schema_contract",
    "customer_id_not_null",
    "order_status_not_null",
    "order_status_accepted",
    "id_unique_and_not_null",
    "validated_plus_rejected_equals_raw",
    "field_names_distinct",
}
# Just the ingestion: for tests about loading, where the checks and models only cost time.
RAW_ONLY = AssetSelection.assets(["fulfillment", "fulfillment_data"]).without_checks()


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data dir (DuckDB file, dlt pipelines dir) and no ambient config."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("FULFILLMENT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("SOURCES__FULFILLMENT__BACKOFF_FACTOR", TEST_BACKOFF_FACTOR)
    for name in list(os.environ):
        if name.startswith(("SOURCES__FULFILLMENT__API_KEY", "DESTINATION__")):
            monkeypatch.delenv(name)
    return data_dir


@pytest.fixture
def demo_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoApiServer]:
    """The demo API with realistic data, wired into the source's configuration."""
    with DemoApiServer(DemoApiOptions(records=1234, api_key=TEST_API_KEY), port=0) as api:
        monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", api.url)
        monkeypatch.setenv("SOURCES__FULFILLMENT__API_KEY", TEST_API_KEY)
        yield api


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as test_instance:
        yield test_instance


def materialize_all(
    instance: DagsterInstance, *, raise_on_error: bool = True, selection: Any = None
) -> ExecuteInProcessResult:
    """Materializes the project's assets (all of them by default) as the definitions declare."""
    from fulfillment_assets.definitions import defs

    return materialize(
        list(defs.assets or []) + list(defs.asset_checks or []),
        resources=defs.resources,
        instance=instance,
        raise_on_error=raise_on_error,
        selection=selection,
    )


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Reads the test's DuckDB file directly, outside dlt and Dagster."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def table_snapshot(data_dir: Path) -> list[tuple[Any, ...]]:
    """Every row of the raw table, in id order, without dlt's load bookkeeping columns."""
    return query(
        data_dir,
        "SELECT id, customer_id, order_status, updated_at, amount "
        "FROM fulfillment.fulfillment_data ORDER BY id",
    )


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
