"""A run whose process was SIGKILLed never blocks later runs: with the daemon running (`dg dev`),
a run launched from the UI (GraphQL) after it proceeds, and the dead run is marked failed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from fulfillment_assets import settings
from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer
from fulfillment_assets_tests.helpers import TEST_API_KEY
from fulfillment_assets_tests.served.cli import MATERIALIZE_EVERYTHING, wait_for
from fulfillment_assets_tests.served.process import HOST
from fulfillment_assets_tests.served.server import DagsterServer

pytestmark = pytest.mark.slow

RECORDS = 3000
RUN_TIMEOUT_SECONDS = 240


def test_a_run_launched_after_a_killed_one_proceeds_and_the_dead_run_is_failed(
    tmp_path: Path,
) -> None:
    options = DemoApiOptions(records=RECORDS, api_key=TEST_API_KEY)
    with DemoApiServer(options, port=0) as api:
        env = {
            "SOURCES__FULFILLMENT__BASE_URL": api.url,
            "SOURCES__FULFILLMENT__API_KEY": TEST_API_KEY,
            "SOURCES__FULFILLMENT__BACKOFF_FACTOR": "0.02",
            "FULFILLMENT_DEAD_RUN_SENSOR_INTERVAL_SECONDS": "5",
        }
        with DagsterServer(tmp_path, env=env) as dagster:
            # The freshness sensor's first refresh (the table was never loaded) goes first.
            dagster.wait_until_idle()
            client = DagsterGraphQLClient(HOST, port_number=dagster.port, timeout=30)

            # A CLI run in the same instance and data dir, killed mid-extract.
            api.configure(latency_ms=100)
            api.clear_requests()
            child = subprocess.Popen(
                MATERIALIZE_EVERYTHING,
                env=dagster.env,
                cwd=settings.PROJECT_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                wait_for(lambda: len(api.requests) >= 5, 120, "the CLI run to fetch pages")
                os.killpg(child.pid, signal.SIGKILL)
            finally:
                child.wait(timeout=30)
            (killed,) = [run for run in dagster.runs_in_progress() if run["status"] == "STARTED"]
            api.configure(latency_ms=0)

            # One run at a time (dagster.yaml): this one waits in the queue until the dead-run
            # sensor has marked the killed one failed.
            run_id = client.submit_job_execution("fulfillment_refresh")
            deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
            status = client.get_run_status(run_id)
            while status not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE):
                assert time.monotonic() < deadline, (
                    f"run {run_id} still {status.value} behind the killed run:\n"
                    + dagster.log_tail(lines=80)
                )
                time.sleep(1)
                status = client.get_run_status(run_id)

            assert status == DagsterRunStatus.SUCCESS, dagster.log_tail(lines=80)
            assert dagster.run_status(killed["runId"]) == "FAILURE"

            # Every tick's log (the UI's, once "No logs to display") says what it checked; one
            # names the killed run and why it was marked failed.
            ticks = dagster.sensor_ticks("fulfillment_dead_run_sensor")
            logs = [[event["message"] for event in tick["logEvents"]["events"]] for tick in ticks]
            assert ticks and all(any("checked " in line for line in log) for log in logs), logs
            assert any(
                "marked 1 failed, whose process died" in line and killed["runId"] in line
                for log in logs
                for line in log
            ), logs
