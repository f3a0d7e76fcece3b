"""Two materializations of everything started at once (two processes, no daemon) on DuckDB: both
succeed. Loads wait for each other (the pipeline's lock); checks and models wait where they would
open the DuckDB file another process has open (the lock next to the file)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

from fulfillment_assets import settings
from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer
from fulfillment_assets_tests.helpers import TEST_API_KEY, query

pytestmark = pytest.mark.slow

RECORDS = 1500
EVERYTHING = """
from dagster import DagsterInstance, materialize
from fulfillment_assets.definitions import defs
with DagsterInstance.get() as instance:
    result = materialize(
        list(defs.assets) + list(defs.asset_checks),
        resources=defs.resources,
        instance=instance,
        raise_on_error=False,
    )
    failed = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
print(failed)
print("run", result.run_id, result.success)
"""


def test_two_materializations_of_everything_at_once_both_succeed(
    demo_api: DemoApiServer, tmp_path: Path, isolated_environment: Path
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(settings.PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)):
        pass  # the storage exists before two processes race to create it
    # Slow enough pages that the two runs overlap.
    demo_api.configure(DemoApiOptions(records=RECORDS, api_key=TEST_API_KEY, latency_ms=20))
    env = {**os.environ, "DAGSTER_HOME": str(home)}

    children = [
        subprocess.Popen(
            [sys.executable, "-c", EVERYTHING],
            env=env,
            cwd=settings.PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=600)[0] for child in children]

    assert all(child.returncode == 0 for child in children), outputs
    assert all(output.strip().endswith("True") for output in outputs), outputs
    assert query(
        isolated_environment,
        "SELECT count(*), count(DISTINCT id) FROM fulfillment.fulfillment_data",
    ) == [(RECORDS, RECORDS)]
    ((validated,),) = query(
        isolated_environment, "SELECT count(*) FROM fulfillment.orders_validated"
    )
    ((rejected,),) = query(isolated_environment, "SELECT count(*) FROM fulfillment.orders_rejected")
    assert validated + rejected == RECORDS
