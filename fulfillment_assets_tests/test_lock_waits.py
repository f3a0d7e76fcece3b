"""Every wait for a lock another process holds is bounded: past FULFILLMENT_LOCK_WAIT_SECONDS the
run fails naming the holder (its PID) and the setting, and nothing is loaded."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from dagster import DagsterInstance

from fulfillment_assets import settings
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets_tests.helpers import RAW_ONLY, failure_message, materialize_all

# Takes a lock with the project's own code in another process, says so, then holds it.
HOLD = """
import logging, sys, time
from fulfillment_assets.warehouse import locks
locks.acquire(locks.machine_lock(sys.argv[1]), "a test's lock", logging.getLogger())
print("held", flush=True)
time.sleep(60)
"""

LOCK_PATHS: dict[str, Callable[[], Path]] = {
    "pipeline": lambda: settings.pipelines_dir() / f"{settings.PIPELINE_NAME}.lock",
    "DuckDB file": lambda: Path(f"{settings.duckdb_path()}.lock"),
}


@pytest.mark.parametrize("which", LOCK_PATHS)
def test_a_lock_held_past_the_bound_fails_naming_the_holder_and_the_setting(
    which: str,
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = LOCK_PATHS[which]()
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("FULFILLMENT_LOCK_WAIT_SECONDS", "1")

        result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)
    finally:
        holder.kill()
        holder.wait(timeout=10)

    message = failure_message(result)
    assert f"still held by PID {holder.pid}" in message, message
    assert "FULFILLMENT_LOCK_WAIT_SECONDS" in message, message
    demo_api.clear_requests()
    assert materialize_all(instance, selection=RAW_ONLY).success  # free again: loads
