"""The dead-run sensor, evaluated against a real instance as the daemon would: each tick marks
failed the runs whose process died, and its log says what it checked and what it found."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SkipReason,
    build_sensor_context,
)

from fulfillment_assets import settings
from fulfillment_assets.automation.dead_runs import fulfillment_dead_run_sensor
from fulfillment_assets.automation.freshness import REFRESH_JOB_NAME
from fulfillment_assets.definitions import defs
from fulfillment_assets.warehouse.run_liveness import hold_run_liveness, liveness_dir

# A run's process: holds its liveness lock as every run does, until SIGKILL ends it.
RUN_PROCESS = (
    "import sys, time\n"
    "from fulfillment_assets.warehouse.run_liveness import hold_run_liveness\n"
    "with hold_run_liveness(sys.argv[1]):\n"
    "    print('holding', flush=True)\n"
    "    time.sleep(120)\n"
)


def _tick(instance: DagsterInstance, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """One tick: its skip message, and its log (`context.log` writes to standard error)."""
    result = fulfillment_dead_run_sensor(build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(result, SkipReason)
    return result.skip_message or "", capsys.readouterr().err


def _started_run(instance: DagsterInstance) -> DagsterRun:
    run = DagsterRun(
        job_name=REFRESH_JOB_NAME, run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED
    )
    instance.add_run(run)
    return run


def _status(instance: DagsterInstance, run: DagsterRun) -> DagsterRunStatus:
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None
    return stored.status


def test_each_tick_logs_what_it_checked_and_which_runs_it_marked_failed_and_why(
    instance: DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    skipped, log = _tick(instance, capsys)
    assert skipped.startswith("checked 0 runs: no run of this project is in progress")
    assert skipped in log

    alive, killed = _started_run(instance), _started_run(instance)
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_PROCESS, killed.run_id],
        cwd=settings.PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "holding\n"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert any(liveness_dir().glob(f"{killed.run_id}.*.lock"))  # left behind, unlocked
    with hold_run_liveness(alive.run_id):
        skipped, log = _tick(instance, capsys)

        assert skipped == (
            "checked 2 run(s) of this project in progress on this machine: marked 1 failed, "
            "whose process died without reporting an end (its liveness lock was free): "
            f"{killed.run_id}; alive: {alive.run_id}"
        )
        assert skipped in log
        assert f"run {killed.run_id} had died without ending: marked it failed" in log
        assert _status(instance, killed) == DagsterRunStatus.FAILURE
        assert _status(instance, alive) == DagsterRunStatus.STARTED

        skipped, log = _tick(instance, capsys)
        assert skipped == (
            "checked 1 run(s) of this project in progress on this machine, none dead: "
            f"{alive.run_id}"
        )
        assert skipped in log
