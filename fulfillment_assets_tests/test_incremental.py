"""Incremental sync (issue 13): dlt's cursor in the destination, the `updated_since` parameter,
the lookback overlap, bad cursors, and APIs that ignore the parameter. Every run gets a fresh
local dir: only the destination (and Dagster's instance) carries over."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets.demo_api.changes import parse_since
from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    failure_message,
    materialize_all,
    query,
)

CHANGED = {10, 500, 1200}
ADDED = 3  # ids 1235..1237


def _since(sent: str | None) -> int:
    """The Unix seconds of an `updated_since` value the demo API received (it must have one)."""
    assert sent is not None
    since = parse_since(sent)
    assert since is not None
    return since


@pytest.fixture
def incremental(monkeypatch: pytest.MonkeyPatch, destination: str, tmp_path: Path) -> Any:
    """Incremental mode on; `fresh()` gives the next run a new local dir (DuckDB's file stays)."""
    monkeypatch.setenv("SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM", "updated_since")
    if destination == "duckdb":
        monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "warehouse.duckdb"))
    runs = iter(range(1, 100))

    def fresh() -> None:
        monkeypatch.setenv("FULFILLMENT_DATA_DIR", str(tmp_path / f"local-{next(runs)}"))

    return fresh


def raw_run(instance: DagsterInstance, raise_on_error: bool = True) -> Any:
    result = materialize_all(instance, selection=RAW_ONLY, raise_on_error=raise_on_error)
    events = result.get_asset_materialization_events()
    return result, (events[0].materialization.metadata if events else None)


def api_records(api: DemoApiServer) -> dict[int, dict[str, Any]]:
    ds = api._state.live.dataset  # the records the API serves now, by id
    return {i: ds.record(i) for i in ds.changes.ids()}


def rows_by_id(data_dir: Path) -> dict[int, tuple[Any, ...]]:
    rows = query(data_dir, "SELECT id, updated_at, amount FROM fulfillment.fulfillment_data")
    assert len(rows) == len({row[0] for row in rows}), "one row per id"
    return {row[0]: row for row in rows}


def pages_fetched(requests: list[Any], records: int) -> int:
    """Pages with records; at most one more request (the walk ends on an empty page)."""
    with_records = [r for r in requests if r.offset < records]
    assert len(requests) <= len(with_records) + 1, requests
    return len(with_records)


def as_utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


@pytest.mark.every_destination
def test_the_second_run_sends_the_cursor_fetches_only_the_changes_and_holds_each_once(
    demo_api: DemoApiServer, instance: DagsterInstance, incremental: Any, tmp_path: Path
) -> None:
    incremental()
    _, first = raw_run(instance)
    assert {r.updated_since for r in demo_api.requests} == {None}
    assert first["sync_mode"].value == "full" and first["cursor_sent"].value == "none"
    assert first["records_received"].value == 1234
    newest = max(as_utc(r["updated_at"]) for r in api_records(demo_api).values())
    assert as_utc(first["new_cursor"].value) == newest

    demo_api.configure(changed_ids=CHANGED, added_records=ADDED)
    demo_api.clear_requests()
    incremental()
    _, second = raw_run(instance)

    sent = newest - dt.timedelta(seconds=3600)
    expected_param = sent.strftime("%Y-%m-%dT%H:%M:%SZ")
    requests = demo_api.requests
    assert requests and {r.updated_since for r in requests} == {expected_param}
    filtered = demo_api._state.live.dataset.changes.filtered(_since(expected_param))
    assert set(filtered) >= CHANGED | {1235, 1236, 1237}
    assert pages_fetched(requests, len(filtered)) == math.ceil(len(filtered) / 100) < 13 / 2
    assert second["sync_mode"].value == "incremental"
    assert second["cursor_sent"].value == expected_param
    assert second["records_received"].value == len(filtered)

    served = api_records(demo_api)
    rows = rows_by_id(tmp_path)
    assert set(rows) == set(served) and len(rows) == 1237
    for record_id in CHANGED | {1235, 1236, 1237}:
        _, updated_at, amount = rows[record_id]
        assert updated_at.astimezone(dt.UTC) == as_utc(served[record_id]["updated_at"])
        assert amount == served[record_id]["amount"]
    assert as_utc(second["new_cursor"].value) == max(
        as_utc(r["updated_at"]) for r in served.values()
    )


def test_a_failed_run_never_advances_the_cursor(
    demo_api: DemoApiServer, instance: DagsterInstance, incremental: Any, tmp_path: Path
) -> None:
    incremental()
    raw_run(instance)
    before = rows_by_id(tmp_path)
    demo_api.configure(changed_ids=range(1, 400), fail_status=500, fail_offsets={200})
    incremental()
    result, _ = raw_run(instance, raise_on_error=False)
    assert not result.success
    failed_param = demo_api.requests[-1].updated_since
    assert failed_param is not None
    assert rows_by_id(tmp_path) == before, "nothing of the failed walk is loaded"

    demo_api.configure(fail_status=None, fail_offsets=None)
    demo_api.clear_requests()
    incremental()
    _, metadata = raw_run(instance)
    assert metadata["cursor_sent"].value == failed_param
    assert {r.updated_since for r in demo_api.requests} == {failed_param}
    assert len(rows_by_id(tmp_path)) == 1234


def test_an_api_that_ignores_the_parameter_still_loads_correctly(
    demo_api: DemoApiServer, instance: DagsterInstance, incremental: Any, tmp_path: Path
) -> None:
    demo_api.configure(updated_since_param=None)  # the seed's API: offset and limit only
    incremental()
    raw_run(instance)
    demo_api.configure(changed_ids=CHANGED, added_records=ADDED)
    demo_api.clear_requests()
    incremental()
    result, metadata = raw_run(instance)
    assert pages_fetched(demo_api.requests, 1237) == math.ceil(1237 / 100)
    assert all(r.updated_since for r in demo_api.requests)
    assert metadata["sync_mode"].value == "incremental"
    served = api_records(demo_api)
    rows = rows_by_id(tmp_path)
    assert set(rows) == set(served)
    assert all(rows[i][2] == served[i]["amount"] for i in CHANGED)
    assert metadata["records_older_than_cursor"].value == 1237 - len(
        demo_api._state.live.dataset.changes.filtered(_since(demo_api.requests[0].updated_since))
    )
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if "SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM" in entry.user_message
    ]
    assert warnings, "a warning names the setting"


def test_an_unparseable_cursor_fails_naming_the_record_and_field_and_loads_nothing(
    demo_api: DemoApiServer, instance: DagsterInstance, incremental: Any, tmp_path: Path
) -> None:
    incremental()
    raw_run(instance)
    before = rows_by_id(tmp_path)
    demo_api.configure(extra_fields={"updated_at": "last tuesday"})
    incremental()
    result, _ = raw_run(instance, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    since = _since(demo_api.requests[-1].updated_since)
    first_id = demo_api._state.live.dataset.changes.filtered(since)[0]  # the answer's first
    assert f"record id {first_id}: updated_at 'last tuesday'" in message, message
    assert "SOURCES__FULFILLMENT__CURSOR_FIELD" in message
    assert rows_by_id(tmp_path) == before


def test_records_without_the_cursor_field_are_loaded_and_counted(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    incremental: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No record has the field: each is loaded and counted, and no cursor can be set.
    monkeypatch.setenv("SOURCES__FULFILLMENT__CURSOR_FIELD", "modified_at")
    incremental()
    _, metadata = raw_run(instance)
    assert metadata["records_received"].value == 1234
    assert metadata["records_without_cursor"].value == 1234
    assert metadata["new_cursor"].value == "none"
    assert len(rows_by_id(tmp_path)) == 1234
