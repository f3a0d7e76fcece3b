"""A full walk killed (SIGKILL, its whole process group) resumes in the instance it ran in.

The runs are the command a user types (`dagster asset materialize`), in a DAGSTER_HOME of the
test's own; nobody cleans up between them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from dagster import DagsterInstance

from fulfillment_assets import settings
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer
from fulfillment_assets.ingest.walks import WALKS
from fulfillment_assets_tests.helpers import (
    TEST_API_KEY,
    api_rows,
    query,
    requested_offsets,
    table_snapshot,
)
from fulfillment_assets_tests.served.cli import BIN_DIR, SHIPPED_DAGSTER_YAML, wait_for

pytestmark = pytest.mark.slow

RECORDS = 200_000
PAGES = RECORDS // settings.PAGE_LIMIT
CHUNK_PAGES = PAGES // 10  # a tenth of the walk
RAW_FROM_THE_CLI = [
    str(BIN_DIR / "dagster"),
    *("asset", "materialize", "-m", "fulfillment_assets.definitions"),
    *("--select", "fulfillment/fulfillment_data"),
]
RUN_TIMEOUT_SECONDS = 600


def _start(dagster_home: Path, **env: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "SOURCES__FULFILLMENT__CHUNK_PAGES": str(CHUNK_PAGES),
        **env,
    }
    return subprocess.Popen(
        RAW_FROM_THE_CLI,
        env=env,
        cwd=settings.PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _run(dagster_home: Path, **env: str) -> None:
    run = _start(dagster_home, **env)
    try:
        assert run.wait(timeout=RUN_TIMEOUT_SECONDS) == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)


def _position(data_dir: Path) -> dict:
    ((position,),) = query(data_dir, f"SELECT position FROM fulfillment.{WALKS}")
    return json.loads(position)


def _kill_past(
    data_dir: Path,
    dagster_home: Path,
    demo_api: DemoApiServer,
    share: float,
    signal_number: int = signal.SIGKILL,
) -> dict:
    """Starts a run and kills it (SIGKILL to its process group, or `signal_number`) once its walk
    asks for the page at `share` of the records.

    Chunks run one after the other and nothing is fetched past a chunk's end: a page of a chunk
    asked means every chunk before it is committed."""
    at = int(share * RECORDS)
    run = _start(dagster_home)
    try:
        wait_for(
            lambda: (
                run.poll() is not None
                or any(offset >= at for offset in requested_offsets(demo_api))
            ),
            RUN_TIMEOUT_SECONDS,
            f"the walk to reach offset {at}",
            poll=0.01,
        )
        assert run.poll() is None, "the run ended before it could be killed"
        os.killpg(run.pid, signal_number)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
    assert run.returncode == -signal.SIGKILL if signal_number == signal.SIGKILL else run.returncode
    position = _position(data_dir)
    # The chunk before the one asked for is committed (a resumed walk's chunks start a page early).
    assert position["offset"] > at - CHUNK_PAGES * settings.PAGE_LIMIT
    return position


def _resumed_metadata(dagster_home: Path) -> dict:
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        event = instance.get_latest_materialization_event(RAW_ASSET_KEY)
        assert event is not None and event.asset_materialization is not None
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _deleted(data_dir: Path) -> list[tuple]:
    return query(
        data_dir, "SELECT id FROM fulfillment.fulfillment_data WHERE _deleted_at IS NOT NULL"
    )


@pytest.mark.every_destination
def test_a_killed_walk_resumes_where_it_stood_and_judges_deletes_when_whole(
    demo_api: DemoApiServer, dagster_home: Path, isolated_environment: Path
) -> None:
    demo_api.configure(DemoApiOptions(records=RECORDS, api_key=TEST_API_KEY))
    _run(dagster_home)  # the table as a first walk left it
    # Every record changes; the next walk is killed at ~60 %.
    demo_api.configure(data_version=1)
    demo_api.clear_requests()
    position = _kill_past(isolated_environment, dagster_home, demo_api, 0.6)

    assert position["offset"] % (CHUNK_PAGES * settings.PAGE_LIMIT) == 0
    # An order deleted at the API during the interruption, beyond where the walk stood: not
    # marked while the walk is partial.
    gone = RECORDS - 7
    assert gone > position["offset"]
    demo_api.configure(removed_ids={gone})
    assert _deleted(isolated_environment) == []
    demo_api.clear_requests()

    _run(dagster_home)

    # Only the rest was fetched: from one page before where the walk stood, to the empty page.
    offsets = sorted(requested_offsets(demo_api))
    resumed_at = position["offset"] - settings.PAGE_LIMIT
    assert offsets[0] == resumed_at
    # One record fewer: the pages from `resumed_at` to the total of RECORDS - 1, and the empty one.
    assert len(offsets) == len(range(resumed_at, RECORDS - 1, settings.PAGE_LIMIT)) + 1
    assert len(set(offsets)) == len(offsets)
    # Row for row what an uninterrupted walk of the API loads (its records in their version 1),
    # and the deleted order marked, now that the walk is whole.
    expected = [row for row in api_rows(demo_api) if row[0] != gone]
    assert [row for row in table_snapshot(isolated_environment) if row[0] != gone] == expected
    assert _deleted(isolated_environment) == [(gone,)]
    sync = _resumed_metadata(dagster_home)
    assert sync["walk_status"] == "complete" and sync["walk_complete"] is True
    assert sync["walk_runs"] == 2 and sync["walk_resumed_from_offset"] == resumed_at
    assert sync["rows_marked_deleted"] == 1
    assert query(isolated_environment, f"SELECT count(*) FROM fulfillment.{WALKS}") == [(0,)]


def test_a_walk_killed_twice_completes_on_the_third_run(
    demo_api: DemoApiServer,
    dagster_home: Path,
    isolated_environment: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    demo_api.configure(DemoApiOptions(records=RECORDS, api_key=TEST_API_KEY))
    _run(dagster_home)  # the table as a first walk left it
    # Every record changes; the next walk is killed twice.
    demo_api.configure(data_version=1)
    demo_api.clear_requests()
    first = _kill_past(isolated_environment, dagster_home, demo_api, 0.3)
    # An order deleted at the API during the interruption, beyond where the walk stood.
    gone = RECORDS - 7
    demo_api.configure(removed_ids={gone})
    demo_api.clear_requests()
    second = _kill_past(isolated_environment, dagster_home, demo_api, 0.7)

    assert second["offset"] > first["offset"] and second["runs"] == 2
    # The resuming run was interrupted too: the walk is still partial, nothing is marked yet.
    assert _deleted(isolated_environment) == []
    demo_api.clear_requests()
    _run(dagster_home)

    # Only the rest: one page before where the walk stood to the empty page, each once.
    offsets = sorted(requested_offsets(demo_api))
    resumed_at = second["offset"] - settings.PAGE_LIMIT
    assert offsets == [*range(resumed_at, RECORDS - 1, settings.PAGE_LIMIT), RECORDS - 1]
    assert _deleted(isolated_environment) == [(gone,)]
    sync = _resumed_metadata(dagster_home)
    assert sync["walk_runs"] == 3 and sync["walk_complete"] is True
    assert sync["walk_records"] == RECORDS - 1 and sync["rows_marked_deleted"] == 1
    interrupted = _raw_rows(exclude_id=gone)

    # The same API walked once, uninterrupted and in one load, into a DuckDB file of its own.
    reference_dir, reference_home = tmp_path / "reference_data", tmp_path / "reference_home"
    reference_home.mkdir()
    shutil.copy(SHIPPED_DAGSTER_YAML, reference_home / "dagster.yaml")
    _run(
        reference_home,
        FULFILLMENT_DATA_DIR=str(reference_dir),
        SOURCES__FULFILLMENT__CHUNK_PAGES=str(PAGES + 1),
    )
    monkeypatch.setenv("FULFILLMENT_DATA_DIR", str(reference_dir))
    uninterrupted = _raw_rows(exclude_id=gone)

    # Row for row and column for column (dlt's load ids aside), the deleted order aside.
    assert interrupted[0] == uninterrupted[0]
    assert len(interrupted[1]) == RECORDS - 1
    assert interrupted[1] == uninterrupted[1]


def _raw_rows(exclude_id: int) -> tuple[list[str], list[tuple]]:
    """The raw table's columns (dlt's load bookkeeping aside) and its rows in id order, as the
    warehouse of FULFILLMENT_DATA_DIR holds them."""
    columns = sorted(
        name
        for (name,) in query(
            Path(),
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'fulfillment' AND table_name = 'fulfillment_data'",
        )
        if name not in ("_dlt_load_id", "_dlt_id")
    )
    rows = query(
        Path(),
        f"SELECT {', '.join(columns)} FROM fulfillment.fulfillment_data "
        f"WHERE id <> {exclude_id} ORDER BY id",
    )
    return columns, rows


def test_a_sigtermed_walk_says_where_it_stands_and_the_next_run_resumes_there(
    demo_api: DemoApiServer, dagster_home: Path, isolated_environment: Path
) -> None:
    # SIGTERM to the run's process group, as a deploy or `docker stop` sends it: Dagster raises
    # its interruption (a BaseException) inside the walk.
    demo_api.configure(DemoApiOptions(records=RECORDS, api_key=TEST_API_KEY))
    position = _kill_past(isolated_environment, dagster_home, demo_api, 0.6, signal.SIGTERM)

    assert position["offset"] % (CHUNK_PAGES * settings.PAGE_LIMIT) == 0
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.fetch_observations(RAW_ASSET_KEY, limit=1).records
        assert instance.get_latest_materialization_event(RAW_ASSET_KEY) is None
    (observed,) = [
        {k: v.value for k, v in record.asset_observation.metadata.items()}
        for record in records
        if record.asset_observation
    ]
    assert observed["walk_status"] == "partial"
    assert observed["walk_records"] == position["records"] == position["offset"]
    demo_api.clear_requests()

    _run(dagster_home)

    offsets = sorted(requested_offsets(demo_api))
    resumed_at = position["offset"] - settings.PAGE_LIMIT
    assert offsets == [*range(resumed_at, RECORDS + 1, settings.PAGE_LIMIT)]
    assert table_snapshot(isolated_environment) == api_rows(demo_api)
    assert _resumed_metadata(dagster_home)["walk_runs"] == 2


@pytest.mark.every_destination
def test_a_killed_walk_resumes_on_a_new_machine_from_what_the_destination_keeps(
    demo_api: DemoApiServer, dagster_home: Path, isolated_environment: Path, tmp_path: Path
) -> None:
    demo_api.configure(DemoApiOptions(records=RECORDS, api_key=TEST_API_KEY))
    position = _kill_past(isolated_environment, dagster_home, demo_api, 0.6)
    # A new machine: no Dagster instance of the killed run, no dlt working dir; only the
    # destination (the DuckDB file, or the PostgreSQL database) is what it was.
    shutil.rmtree(settings.pipelines_dir())
    new_home = tmp_path / "new_machine_dagster_home"
    new_home.mkdir()
    shutil.copy(SHIPPED_DAGSTER_YAML, new_home / "dagster.yaml")
    demo_api.clear_requests()

    _run(new_home)

    offsets = sorted(requested_offsets(demo_api))
    resumed_at = position["offset"] - settings.PAGE_LIMIT
    assert offsets == [*range(resumed_at, RECORDS + 1, settings.PAGE_LIMIT)]
    assert table_snapshot(isolated_environment) == api_rows(demo_api)
    sync = _resumed_metadata(new_home)
    assert sync["walk_runs"] == 2 and sync["walk_resumed_from_offset"] == resumed_at
    assert sync["walk_records"] == RECORDS and sync["walk_complete"] is True
