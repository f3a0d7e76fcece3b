"""Killed workers and concurrent runs: nothing lost, nothing duplicated, nothing corrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from fulfillment_assets import settings
from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer, make_record
from fulfillment_assets_tests.helpers import TEST_API_KEY, query
from fulfillment_assets_tests.served.cli import MATERIALIZE_EVERYTHING, wait_for

pytestmark = pytest.mark.slow

RECORDS = 3000
# A child process that materializes the raw table into the shared data dir and Dagster instance.
CHILD = """
from dagster import DagsterInstance, materialize
from fulfillment_assets.definitions import defs
from fulfillment_assets_tests.helpers import RAW_ONLY
with DagsterInstance.get() as instance:
    result = materialize(
        list(defs.assets), resources=defs.resources, instance=instance, selection=RAW_ONLY
    )
print("run", result.run_id, result.success)
"""
CLI_TIMEOUT_SECONDS = 300


def _start_child(dagster_home: Path, command: list[str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    return subprocess.Popen(
        command or [sys.executable, "-c", CHILD],
        env=env,
        cwd=settings.PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def _loaded_once_each(data_dir: Path) -> None:
    ((rows, ids),) = query(
        data_dir, "SELECT count(*), count(DISTINCT id) FROM fulfillment.fulfillment_data"
    )
    assert rows == ids == RECORDS


def _runs_by_status(dagster_home: Path) -> dict[str, DagsterRunStatus]:
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        return {
            record.dagster_run.run_id: record.dagster_run.status
            for record in instance.get_run_records()
        }


def _kill_mid_phase(
    phase: str, child: subprocess.Popen, demo_api: DemoApiServer, data_dir: Path
) -> None:
    """SIGKILLs the child's whole process group once it is extracting or loading."""
    normalized = data_dir / "dlt_pipelines" / settings.PIPELINE_NAME / "load"
    try:
        if phase == "extract":
            wait_for(
                lambda: len(demo_api.requests) >= 5, 120, "the child to fetch pages", poll=0.002
            )
        else:
            wait_for(
                lambda: (
                    any(normalized.glob("normalized/*/started_jobs/*")) or child.poll() is not None
                ),
                120,
                "the child to start loading",
                poll=0.002,
            )
            assert child.poll() is None, "the child finished before it could be killed"
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.every_destination
@pytest.mark.parametrize("phase", ["extract", "load"])
def test_after_a_run_killed_mid_phase_the_next_cli_run_loads_everything(
    phase: str, demo_api: DemoApiServer, dagster_home: Path, isolated_environment: Path
) -> None:
    demo_api.configure(DemoApiOptions(records=RECORDS, api_key=TEST_API_KEY))
    first = _start_child(dagster_home, MATERIALIZE_EVERYTHING)
    assert first.wait(timeout=CLI_TIMEOUT_SECONDS) == 0
    # The next version, slowly served while extracting, so the kill lands while the child works.
    demo_api.configure(
        DemoApiOptions(
            records=RECORDS,
            api_key=TEST_API_KEY,
            data_version=1,
            latency_ms=100 if phase == "extract" else 0,
        )
    )
    demo_api.clear_requests()
    killed_before = set(_runs_by_status(dagster_home))
    _kill_mid_phase(
        phase, _start_child(dagster_home, MATERIALIZE_EVERYTHING), demo_api, isolated_environment
    )
    (killed_run,) = set(_runs_by_status(dagster_home)) - killed_before
    # Nothing told the instance: the killed run still reads as executing.
    assert _runs_by_status(dagster_home)[killed_run] == DagsterRunStatus.STARTED

    demo_api.configure(latency_ms=0)
    # In the killed run's own instance, unattended: no daemon, nobody frees anything by hand.
    after = _start_child(dagster_home, MATERIALIZE_EVERYTHING)
    try:
        assert after.wait(timeout=CLI_TIMEOUT_SECONDS) == 0
    finally:
        if after.poll() is None:
            os.killpg(after.pid, signal.SIGKILL)

    statuses = _runs_by_status(dagster_home)
    assert statuses[killed_run] == DagsterRunStatus.FAILURE
    assert list(statuses.values()).count(DagsterRunStatus.SUCCESS) == 2
    _loaded_once_each(isolated_environment)
    # Every record in its new version: nothing of the killed run lingers, nothing is missing.
    assert query(
        isolated_environment, "SELECT id, amount FROM fulfillment.fulfillment_data ORDER BY id"
    ) == [(i, make_record(i, version=1)["amount"]) for i in range(1, RECORDS + 1)]


def test_two_ingestion_runs_at_once_load_one_after_the_other(
    demo_api: DemoApiServer, dagster_home: Path, isolated_environment: Path
) -> None:
    # Runs started outside the run queue (CLI, scripts) are not held back by the pool, which is
    # enforced when runs are dequeued: the pipeline's file lock alone must keep the loads apart.
    # Slow pages, so the two runs overlap unless something keeps them apart.
    demo_api.configure(DemoApiOptions(records=RECORDS, api_key=TEST_API_KEY, latency_ms=50))

    children = [_start_child(dagster_home), _start_child(dagster_home)]
    outputs = [child.communicate(timeout=300)[0] for child in children]

    assert all(child.returncode == 0 for child in children), outputs
    assert all(output.strip().endswith("True") for output in outputs), outputs
    # dlt's own record of the two loads: each extract started (load_id) after the other load
    # had finished loading (inserted_at), whichever got the lock first.
    loads = query(
        isolated_environment,
        "SELECT CAST(load_id AS DOUBLE), epoch(inserted_at) FROM fulfillment._dlt_loads "
        "ORDER BY load_id",
    )
    assert len(loads) == 2, loads
    (_, first_done), (second_started, _) = loads
    assert first_done <= second_started, f"the two loads overlapped: {loads}"
    _loaded_once_each(isolated_environment)


def test_code_loading_and_queries_during_a_load_leave_it_alone(
    demo_api: DemoApiServer, dagster_home: Path, isolated_environment: Path
) -> None:
    # Every process that loads the code (webserver, daemon, each run) builds the definitions'
    # pipeline; dlt wipes a working dir without state, as a load's is while it extracts.
    # Without `total` the walk is sequential: slow enough to still be extracting afterwards.
    demo_api.configure(
        DemoApiOptions(records=RECORDS, api_key=TEST_API_KEY, include_total=False, latency_ms=300)
    )
    child = _start_child(dagster_home)
    try:
        wait_for(lambda: len(demo_api.requests) >= 3, 120, "the child to fetch pages", poll=0.002)
        loader = subprocess.run(
            [sys.executable, "-c", CODE_LOCATION_AND_QUERY],
            cwd=settings.PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert loader.returncode == 0, loader.stderr[-2000:]
        assert child.poll() is None, "the load finished before the code location was loaded"
        demo_api.configure(latency_ms=0)
        output = child.communicate(timeout=300)[0]
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == 0 and output.strip().endswith("True"), output
    _loaded_once_each(isolated_environment)


# A code location loading, then a reader asking for the stored schema, as a check would.
CODE_LOCATION_AND_QUERY = """
from fulfillment_assets.definitions import defs
from fulfillment_assets.warehouse.resource import Warehouse
assert defs.resolve_asset_graph().get_all_asset_keys()
Warehouse().stored_schema()
"""
