"""The project's command line in subprocesses: where the project and the venv's executables are,
the environment a subprocess gets, the command a user types to materialize everything, and
polling until something a subprocess does has happened."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
BIN_DIR = Path(sys.executable).parent
# The instance settings the project ships (telemetry off), copied into each test's DAGSTER_HOME.
SHIPPED_DAGSTER_YAML = REPO_ROOT / "dagster_home" / "dagster.yaml"

# What a user types (and what the OOM killer hits): every asset and check, from the CLI.
MATERIALIZE_EVERYTHING = [
    str(BIN_DIR / "dagster"),
    "asset",
    "materialize",
    "-m",
    "fulfillment_assets.definitions",
    "--select",
    "*",
]


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, poll: float = 0.05
) -> None:
    """Polls `condition` until it is true; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def subprocess_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without ambient project settings, plus `extra`."""
    env = {
        name: value
        for name, value in os.environ.items()
        # Ambient config (a developer's key, another data dir or destination) must not leak in;
        # PYTHONWARNINGS is dropped so the log shows the warnings a user sees by default.
        if not name.startswith(("SOURCES__", "DESTINATION__", "FULFILLMENT_", "DAGSTER_"))
        and name not in ("PYTHONWARNINGS", "PYTEST_CURRENT_TEST")
    }
    # Unbuffered, so the log file is complete whenever the tests read it.
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env
