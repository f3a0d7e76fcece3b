"""Deletes (issue 13): a complete full walk marks the rows it did not return with `_deleted_at`,
clears the mark when a row comes back, and refuses to mark more than MAX_DELETE_FRACTION; the
models leave deleted rows out. Each run gets a fresh local dir; only the destination carries
over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from fulfillment_assets.automation.freshness import FULL_REFRESH_JOB_NAME
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets_tests.helpers import RAW_ONLY, failure_message, materialize_all, query

DROPPED = {3, 77, 1000}
MODELS = {"orders_validated", "orders_rejected", "orders_daily_summary"}
FULL_REFRESH = {"ops": {"fulfillment_ingest": {"config": {"full_refresh": True}}}}


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, destination: str, tmp_path: Path) -> Any:
    """`fresh()` gives the next run a new local dir; DuckDB's file stays where it is."""
    if destination == "duckdb":
        monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "warehouse.duckdb"))
    runs = iter(range(1, 100))

    def new_dir() -> None:
        monkeypatch.setenv("FULFILLMENT_DATA_DIR", str(tmp_path / f"local-{next(runs)}"))

    new_dir()
    return new_dir


def deleted(tmp_path: Path) -> dict[int, Any]:
    rows = query(
        tmp_path,
        "SELECT id, _deleted_at FROM fulfillment.fulfillment_data WHERE _deleted_at IS NOT NULL",
    )
    return dict(rows)


def raw_metadata(result: Any) -> dict[str, Any]:
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "fulfillment_data"
    ]
    return event.materialization.metadata


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.every_destination
def test_a_full_sync_marks_exactly_the_dropped_orders_and_the_models_leave_them_out(
    demo_api: DemoApiServer, instance: DagsterInstance, fresh: Any, tmp_path: Path
) -> None:
    materialize_all(instance)
    demo_api.configure(removed_ids=DROPPED)
    fresh()
    result = materialize_all(instance)

    marked = deleted(tmp_path)
    assert set(marked) == DROPPED
    assert raw_metadata(result)["rows_marked_deleted"].value == 3
    ids = "(3, 77, 1000)"
    assert query(tmp_path, "SELECT count(*) FROM fulfillment.fulfillment_data") == [(1234,)]
    for model in ("orders_validated", "orders_rejected"):
        assert query(tmp_path, f"SELECT count(*) FROM fulfillment.{model} WHERE id IN {ids}") == [
            (0,)
        ]
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    reconciliation = checks["validated_plus_rejected_equals_raw"]
    assert reconciliation.passed and reconciliation.metadata["deleted_rows"].value == 3
    ((orders,),) = query(tmp_path, "SELECT sum(orders) FROM fulfillment.orders_daily_summary")
    assert orders == 1234 - 3

    # 3 and 1000 come back: cleared; 77 stays gone and keeps the time it was first noticed.
    demo_api.configure(removed_ids={77})
    fresh()
    result = materialize_all(instance, selection=RAW_ONLY)
    assert deleted(tmp_path) == {77: marked[77]}
    assert raw_metadata(result)["rows_marked_deleted"].value == 0


def test_a_walk_that_would_mark_too_many_marks_none_and_fails_naming_counts_and_setting(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    fresh: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    materialize_all(instance, selection=RAW_ONLY)
    demo_api.configure(removed_ids=range(1, 701))
    fresh()
    result = materialize_all(instance, selection=RAW_ONLY, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "mark 700 of the 1234 rows" in message, message
    assert "SOURCES__FULFILLMENT__MAX_DELETE_FRACTION=0.5" in message
    assert deleted(tmp_path) == {}
    assert query(tmp_path, "SELECT count(*) FROM fulfillment.fulfillment_data") == [(1234,)]

    monkeypatch.setenv("SOURCES__FULFILLMENT__MAX_DELETE_FRACTION", "0.6")
    fresh()
    materialize_all(instance, selection=RAW_ONLY)
    assert set(deleted(tmp_path)) == set(range(1, 701))


def test_incremental_runs_never_mark_and_a_full_refresh_finds_the_deletes(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    fresh: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fulfillment_assets.definitions import defs

    monkeypatch.setenv("SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM", "updated_since")
    materialize_all(instance)
    demo_api.configure(removed_ids=DROPPED, changed_ids={5})
    fresh()
    result = materialize_all(instance, selection=RAW_ONLY)
    assert raw_metadata(result)["sync_mode"].value == "incremental"
    assert deleted(tmp_path) == {}

    demo_api.clear_requests()
    fresh()
    # The full refresh job, with its own run config (as its Launchpad shows it).
    job = defs.resolve_job_def(FULL_REFRESH_JOB_NAME)
    result = job.execute_in_process(instance=instance)
    metadata = raw_metadata(result)
    assert metadata["sync_mode"].value == "full"
    assert metadata["cursor_sent"].value == "none"
    assert {r.updated_since for r in demo_api.requests} == {None}
    assert set(deleted(tmp_path)) == DROPPED
    assert metadata["rows_marked_deleted"].value == 3
    # The same run rebuilt every table on the raw one: none holds a row it marked deleted.
    built = {e.asset_key.path[-1] for e in result.get_asset_materialization_events() if e.asset_key}
    assert built == {"fulfillment_data", *MODELS}
    for model in ("orders_validated", "orders_rejected"):
        ids = {row[0] for row in query(tmp_path, f"SELECT id FROM fulfillment.{model}")}
        assert ids and not ids & DROPPED, model
    (kept,) = query(
        tmp_path,
        "SELECT count(*) FROM fulfillment.fulfillment_data WHERE _deleted_at IS NULL",
    )
    (validated,) = query(tmp_path, "SELECT count(*) FROM fulfillment.orders_validated")
    (rejected,) = query(tmp_path, "SELECT count(*) FROM fulfillment.orders_rejected")
    assert validated[0] + rejected[0] == kept[0] == demo_api.options.records - len(DROPPED)
