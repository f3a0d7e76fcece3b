"""The main job in a terminal (`python -m fulfillment_assets.demo.job`, what scripts/demo.sh
runs), in a subprocess against the demo API it starts: quiet by default, progress lines, the
summary, a failure's message in full, and everything back with --verbose."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fulfillment_assets.demo import job as demo_job
from fulfillment_assets_tests.helpers import TEST_BACKOFF_FACTOR
from fulfillment_assets_tests.served.cli import (
    REPO_ROOT,
    SHIPPED_DAGSTER_YAML,
    subprocess_environment,
)

RECORDS = 500


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(SHIPPED_DAGSTER_YAML, home / "dagster.yaml")
    env = subprocess_environment(
        {
            "DAGSTER_HOME": str(home),
            "FULFILLMENT_DATA_DIR": str(tmp_path / "data"),
            "SOURCES__FULFILLMENT__BACKOFF_FACTOR": TEST_BACKOFF_FACTOR,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "fulfillment_assets.demo.job", "--records", str(RECORDS), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_quiet_by_default_with_step_lines_and_the_summary(tmp_path: Path) -> None:
    done = _run(tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output

    # No Dagster event log, no library warnings, nothing on stderr at all.
    assert " DEBUG " not in output and "DEBUG -" not in output, output
    assert "warning" not in output.lower(), output
    assert done.stderr == "", done.stderr
    # Progress while it runs, then today's summary.
    assert "  step fulfillment_ingest ..." in done.stdout
    assert f"  materialized fulfillment/fulfillment_data ({RECORDS:,} rows)" in done.stdout
    assert "run " in done.stdout and ": SUCCESS" in done.stdout
    summary = done.stdout[done.stdout.index(": SUCCESS") :]
    assert "materialized fulfillment/fulfillment_data" in summary
    assert "check schema_contract" in summary and "passed" in summary
    assert "DuckDB file:" in summary


def test_a_failure_prints_the_failing_steps_cause_once(tmp_path: Path) -> None:
    done = _run(tmp_path, "--api-fault", "500")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert " DEBUG " not in output, output
    assert ": FAILURE" in done.stdout
    failure = done.stdout[done.stdout.index("  step fulfillment_ingest failed:") :]
    # The root cause, once: the API's status and the body it answered with; no wrapper.
    assert "500" in failure and "injected fault" in failure, failure
    assert failure.count("injected fault") == 1 and "PipelineStepFailed" not in failure, failure


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_verbose_brings_back_dagsters_event_log(tmp_path: Path) -> None:
    done = _run(tmp_path, "--verbose")
    assert done.returncode == 0, done.stdout + done.stderr
    assert " - DEBUG - " in done.stdout + done.stderr
    assert ": SUCCESS" in done.stdout


def test_the_sources_progress_lines_show_on_the_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo_job.quiet(verbose=True)  # verbose: leaves warnings and dlt's log level alone
    demo_job.quiet(verbose=True)  # twice: still one line per message
    progress = logging.getLogger(demo_job.PROGRESS_LOGGER)
    progress.info("fetched %s pages, %s records", 12, 1200)
    progress.debug("not shown")

    assert capsys.readouterr().out == "    fetched 12 pages, 1200 records\n"
