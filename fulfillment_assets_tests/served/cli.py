"""The project's command line in subprocesses: where the project and the venv's executables are,
the environment a subprocess gets, the command a user types to materialize everything, the
commands the shipped deployment (`deploy/`) runs, and polling until something a subprocess does
has happened."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
BIN_DIR = Path(sys.executable).parent
# The instance settings the project ships (telemetry off), copied into each test's DAGSTER_HOME.
SHIPPED_DAGSTER_YAML = REPO_ROOT / "dagster_home" / "dagster.yaml"

# What a user copies for the production topology: the code location's image, the instance and
# workspace settings of the webserver and the daemon, and the compose file wiring them together.
DEPLOY_DIR = REPO_ROOT / "deploy"
CODE_LOCATION_DOCKERFILE = DEPLOY_DIR / "Dockerfile"
DEPLOY_DAGSTER_YAML = DEPLOY_DIR / "dagster.yaml"
DEPLOY_WORKSPACE_YAML = DEPLOY_DIR / "workspace.yaml"
DEPLOY_COMPOSE_FILE = DEPLOY_DIR / "docker-compose.yaml"
# The variables deploy/workspace.yaml reads the code server's address from.
CODE_SERVER_HOST_VARIABLE = "FULFILLMENT_CODE_SERVER_HOST"
CODE_SERVER_PORT_VARIABLE = "FULFILLMENT_CODE_SERVER_PORT"

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


def materialize_everything_from_the_cli(
    dagster_home: Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """One MATERIALIZE_EVERYTHING run in `dagster_home` (from `cwd`: where dlt looks for
    `.dlt/`), as a user types it; fails the test, with the end of its stderr, unless it succeeds."""
    completed = subprocess.run(
        MATERIALIZE_EVERYTHING,
        cwd=cwd,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


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


def shipped_code_server_arguments() -> list[str]:
    """The code location image's `CMD` (deploy/Dockerfile), as shipped."""
    found = re.search(r"^CMD (\[.*\])$", CODE_LOCATION_DOCKERFILE.read_text(), re.MULTILINE)
    if found is None:
        raise ValueError(f"{CODE_LOCATION_DOCKERFILE} has no CMD [...] line")
    return json.loads(found.group(1))


def shipped_code_server_command(host: str, port: int) -> list[str]:
    """The code location image's `CMD` with this venv's executable, serving on `host`:`port`
    instead of the container's 0.0.0.0 and fixed port: the tests run what ships."""
    executable, *arguments = shipped_code_server_arguments()
    for option, value in (("-h", host), ("-p", str(port))):
        arguments[arguments.index(option) + 1] = value
    return [str(BIN_DIR / executable), *arguments]


def code_server_health_check(port: int, host: str | None = None) -> list[str]:
    """Dagster's own check that a code server serves (loaded: it answers only once its code is),
    on `host` (default: localhost); deploy/docker-compose.yaml's health check runs it too."""
    address = ["-h", host] if host else []
    return [str(BIN_DIR / "dagster"), "api", "grpc-health-check", *address, "-p", str(port)]
