"""A full walk in committed chunks: judged as one, resumed where a failed run left it.

Real Dagster runs against the demo API; the killed runs (SIGKILL, in the instance they ran in)
are in `test_resumable_walks_killed.py`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetSelection, DagsterInstance, RunConfig, RunRequest, build_sensor_context

from fulfillment_assets.automation.freshness import fulfillment_freshness_sensor
from fulfillment_assets.contract import RAW_ASSET_KEY, VALIDATED_KEY
from fulfillment_assets.definitions import defs
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets.ingest.sync_metadata import IngestConfig
from fulfillment_assets.ingest.walks import WALK_IDS, WALKS
from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    api_rows,
    failure_message,
    materialize_all,
    query,
    requested_offsets,
    table_snapshot,
)

# 1234 records: pages of 100, 3 pages a chunk: chunks at 0, 300, 600, 900, 1200 (the last one
# with the empty page at 1234).
RECORDS = 1234
CHUNK_PAGES = "3"


@pytest.fixture
def chunked(monkeypatch: pytest.MonkeyPatch, demo_api: DemoApiServer) -> DemoApiServer:
    monkeypatch.setenv("SOURCES__FULFILLMENT__CHUNK_PAGES", CHUNK_PAGES)
    demo_api.configure(records=RECORDS)
    demo_api.clear_requests()
    return demo_api


def _raw_metadata(instance: DagsterInstance) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(RAW_ASSET_KEY)
    assert event is not None and event.asset_materialization is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _observations(instance: DagsterInstance) -> list[dict[str, Any]]:
    records = instance.fetch_observations(RAW_ASSET_KEY, limit=10).records
    return [
        {k: v.value for k, v in record.asset_observation.metadata.items()}
        for record in records
        if record.asset_observation
    ]


def _walk_row(data_dir: Path) -> dict[str, Any] | None:
    rows = query(data_dir, f"SELECT position FROM fulfillment.{WALKS}")
    return json.loads(rows[0][0]) if rows else None


def _run_log(instance: DagsterInstance, run_id: str) -> str:
    """The run's event log as the UI shows it: `context.log` lines included."""
    return "\n".join(record.user_message for record in instance.all_logs(run_id))


def _full_refresh(**config: Any) -> RunConfig:
    return RunConfig(ops={"fulfillment_ingest": IngestConfig(full_refresh=True, **config)})


def test_a_walk_in_chunks_loads_what_one_load_would_and_judges_the_whole_walk(
    chunked: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    result = materialize_all(instance, selection=RAW_ONLY)

    assert result.success
    assert table_snapshot(isolated_environment) == api_rows(chunked)
    sync = _raw_metadata(instance)
    assert sync["walk_status"] == "complete" and sync["walk_complete"] is True
    assert sync["walk_chunks"] == 5 and sync["walk_runs"] == 1
    assert sync["walk_records"] == RECORDS and sync["walk_records_expected"] == RECORDS
    # Each chunk is a load of its own; nothing was asked twice within one run.
    loads = query(isolated_environment, "SELECT count(*) FROM fulfillment._dlt_loads")
    assert loads == [(5,)]
    offsets = requested_offsets(chunked)
    assert sorted(offsets) == list(range(0, RECORDS + 1, 100)) + [RECORDS]
    # A finished walk leaves nothing behind to resume.
    assert _walk_row(isolated_environment) is None
    assert query(isolated_environment, f"SELECT count(*) FROM fulfillment.{WALK_IDS}") == [(0,)]


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_deletes_are_judged_over_every_chunk_of_the_walk(
    chunked: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    assert materialize_all(instance, selection=RAW_ONLY).success
    # Gone from the API: ids in the first chunk and in the last one.
    chunked.configure(removed_ids={5, 1230})

    assert materialize_all(instance, selection=RAW_ONLY).success

    deleted = query(
        isolated_environment,
        "SELECT id FROM fulfillment.fulfillment_data WHERE _deleted_at IS NOT NULL ORDER BY id",
    )
    assert deleted == [(5,), (1230,)]
    assert _raw_metadata(instance)["rows_marked_deleted"] == 2


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_failed_chunk_keeps_the_position_says_so_and_the_next_run_resumes_there(
    chunked: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    # The page at 700 fails: chunks 0-299 and 300-599 are loaded, the third fails.
    chunked.configure(fail_status=500, fail_offsets={700})

    failed = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert not failed.success
    assert "HTTP 500" in failure_message(failed)
    position = _walk_row(isolated_environment)
    assert position is not None and position["offset"] == 600 and position["chunks"] == 2
    assert query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data") == [
        (600,)
    ]
    # Visible on the asset page as an observation: the table is not whole, and freshness does
    # not take it for a load.
    (observed,) = _observations(instance)
    assert observed["walk_status"] == "partial" and observed["walk_records"] == 600
    assert "resumes it at offset 500" in observed["walk_summary"]
    assert instance.get_latest_materialization_event(RAW_ASSET_KEY) is None
    tick = fulfillment_freshness_sensor(build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(tick, RunRequest)
    assert tick.tags["fulfillment/reason"] == "the raw table has never been loaded"
    # The check and the models built meanwhile say that the walk is still going.
    checks = materialize_all(
        instance,
        selection=AssetSelection.checks_for_assets(RAW_ASSET_KEY)
        | AssetSelection.assets(VALIDATED_KEY),
        raise_on_error=False,
    )
    (walk_check,) = [
        evaluation
        for evaluation in checks.get_asset_check_evaluations()
        if evaluation.check_name == "walk_complete"
    ]
    assert not walk_check.passed
    description = walk_check.description or ""
    assert "a full walk is still going" in description
    assert "600 records of 1234" in description
    validated = instance.get_latest_materialization_event(VALIDATED_KEY)
    assert validated is not None and validated.asset_materialization is not None
    built_from = validated.asset_materialization.metadata["built_from"].value
    assert str(built_from).startswith("a partly loaded raw table")

    chunked.configure(fail_status=None, fail_offsets=None)
    chunked.clear_requests()
    resumed = materialize_all(instance, selection=RAW_ONLY)

    assert resumed.success
    # Resumed one page before where the walk stood, never from 0.
    offsets = sorted(requested_offsets(chunked))
    assert offsets == list(range(500, RECORDS + 1, 100)) + [RECORDS]
    assert table_snapshot(isolated_environment) == api_rows(chunked)
    sync = _raw_metadata(instance)
    assert sync["walk_status"] == "complete" and sync["walk_runs"] == 2
    assert sync["walk_resumed_from_offset"] == 500 and sync["walk_complete"] is True
    assert _walk_row(isolated_environment) is None
    # The run's log says where it resumed, and each chunk's line counts on across the runs: the
    # walk's pages and records, not only this run's (3 pages, 500-799, in its first chunk).
    log = _run_log(instance, resumed.run_id)
    assert "600 records in 2 chunk(s) over 2 run(s), pass 1, resumed at offset 500" in log, log
    chunks = re.findall(r"chunk loaded: walk \S+ (\d+) pages, (\d+) records of 1234", log)
    assert chunks[0] == ("9", "800") and len(chunks) >= 2, log


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_resume_false_or_a_walk_too_old_starts_afresh_and_says_so(
    chunked: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunked.configure(fail_status=500, fail_offsets={700})
    assert not materialize_all(instance, raise_on_error=False, selection=RAW_ONLY).success
    chunked.configure(fail_status=None, fail_offsets=None)
    chunked.clear_requests()

    fresh = materialize_all(instance, selection=RAW_ONLY, run_config=_full_refresh(resume=False))

    assert fresh.success
    assert min(requested_offsets(chunked)) == 0
    assert "is not resumed: the run's config says `resume: false`" in _run_log(
        instance, fresh.run_id
    )
    assert _raw_metadata(instance)["walk_runs"] == 1

    chunked.configure(fail_status=500, fail_offsets={700})
    assert not materialize_all(instance, raise_on_error=False, selection=RAW_ONLY).success
    chunked.configure(fail_status=None, fail_offsets=None)
    chunked.clear_requests()
    monkeypatch.setenv("SOURCES__FULFILLMENT__MAX_WALK_AGE_HOURS", "0.000001")

    afresh = materialize_all(instance, selection=RAW_ONLY)
    assert afresh.success
    assert min(requested_offsets(chunked)) == 0
    assert "SOURCES__FULFILLMENT__MAX_WALK_AGE_HOURS=1e-06" in _run_log(instance, afresh.run_id)
    assert table_snapshot(isolated_environment) == api_rows(chunked)


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_an_incremental_first_walk_in_chunks_sets_the_cursor_to_the_whole_walks_newest(
    chunked: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM", "updated_since")

    assert materialize_all(instance, selection=RAW_ONLY).success

    sync = _raw_metadata(instance)
    assert sync["walk_chunks"] == 5 and sync["sync_mode"] == "full"
    ((newest,),) = query(
        isolated_environment,
        "SELECT strftime(max(updated_at), '%Y-%m-%dT%H:%M:%SZ') FROM fulfillment.fulfillment_data",
    )
    assert sync["new_cursor"] == newest
    # The next run is incremental from there.
    chunked.clear_requests()
    assert materialize_all(instance, selection=RAW_ONLY).success
    assert _raw_metadata(instance)["sync_mode"] == "incremental"


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.parametrize("dropped_by", ["max_walk_age", "resume_false"])
def test_a_dropped_partial_walk_is_followed_by_a_full_walk_not_by_its_cursor(
    dropped_by: str,
    chunked: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # dlt stores the incremental cursor with every committed chunk: the partial walk's two
    # chunks leave a cursor as new as the records they received. An incremental run from it
    # would never load the records the walk did not reach.
    monkeypatch.setenv("SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM", "updated_since")
    chunked.configure(fail_status=500, fail_offsets={700})
    assert not materialize_all(instance, raise_on_error=False, selection=RAW_ONLY).success
    assert query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data") == [
        (600,)
    ]
    chunked.configure(fail_status=None, fail_offsets=None)
    chunked.clear_requests()
    if dropped_by == "max_walk_age":
        monkeypatch.setenv("SOURCES__FULFILLMENT__MAX_WALK_AGE_HOURS", "0.000001")
        run_config = None
    else:
        run_config = RunConfig(ops={"fulfillment_ingest": IngestConfig(resume=False)})

    after = materialize_all(instance, selection=RAW_ONLY, run_config=run_config)

    assert after.success
    assert _raw_metadata(instance)["sync_mode"] == "full"
    assert min(requested_offsets(chunked)) == 0
    assert table_snapshot(isolated_environment) == api_rows(chunked)
    # The new walk set the cursor: the run after it is incremental again.
    assert materialize_all(instance, selection=RAW_ONLY).success
    assert _raw_metadata(instance)["sync_mode"] == "incremental"
    assert table_snapshot(isolated_environment) == api_rows(chunked)


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_slow_api_is_walked_in_chunks_of_chunk_seconds(
    chunked: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One page at a time, 150 ms each: the time bound, not the pages (the default 20,000),
    # ends each chunk after ~4 pages.
    monkeypatch.setenv("SOURCES__FULFILLMENT__CHUNK_PAGES", "20000")
    monkeypatch.setenv("SOURCES__FULFILLMENT__CHUNK_SECONDS", "0.5")
    monkeypatch.setenv("SOURCES__FULFILLMENT__PAGE_CONCURRENCY", "1")
    chunked.configure(latency_ms=150)

    assert materialize_all(instance, selection=RAW_ONLY).success

    sync = _raw_metadata(instance)
    pages = RECORDS // 100 + 2  # 13 pages of records and the empty one
    assert 2 <= sync["walk_chunks"] < pages
    assert sync["walk_status"] == "complete" and sync["walk_complete"] is True
    loads = query(isolated_environment, "SELECT count(*) FROM fulfillment._dlt_loads")
    assert loads == [(sync["walk_chunks"],)]
    assert table_snapshot(isolated_environment) == api_rows(chunked)
    offsets = requested_offsets(chunked)
    assert sorted(offsets) == list(range(0, RECORDS + 1, 100)) + [RECORDS]
