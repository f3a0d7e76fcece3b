"""Dagster's webserver and daemon in subprocesses, for the tests that drive the UI and GraphQL.

`DagsterServer` serves `workspace.yaml` from the repo root on a free loopback port, with a
DAGSTER_HOME and a FULFILLMENT_DATA_DIR of its own, captures every process's output in a log file
and stops the whole process tree at the end. `served_project` wires in the demo API as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
HOST = "127.0.0.1"
# The instance settings the project ships (telemetry off), copied into each test's DAGSTER_HOME.
SHIPPED_DAGSTER_YAML = REPO_ROOT / "dagster_home" / "dagster.yaml"

# What the log must not say: warnings about deprecated, superseded, preview or beta APIs.
DEPRECATION_PATTERN = re.compile(
    r"deprecat|superseded|SupersessionWarning|DeprecationWarning|PreviewWarning|BetaWarning",
    re.IGNORECASE,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

IN_PROGRESS_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
FINISHED_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")

# `dg dev` is what the README tells users to run (`dagster dev` is superseded by it in Dagster
# 1.13 and says so in its own log, whatever the project does): webserver and daemon together.
# The daemon is needed even for runs launched through GraphQL: the instance's default run
# coordinator queues runs, and only the daemon dequeues them. "webserver+daemon" starts the two
# services directly, for debugging.
Launcher = Literal["dg dev", "webserver+daemon"]

WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

SENSORS_QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        locationOrLoadError {
          ... on RepositoryLocation {
            repositories {
              sensors { name sensorState { status ticks(limit: 1) { status } } }
            }
          }
        }
      }
    }
  }
}
"""

SENSOR_TICKS_QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        locationOrLoadError {
          ... on RepositoryLocation {
            repositories {
              sensors {
                name
                sensorState {
                  ticks(limit: 50) {
                    status timestamp endTimestamp skipReason
                    error { message }
                    logEvents { events { message level } }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
"""

RUNS_QUERY = """
query Runs($statuses: [RunStatus!]) {
  runsOrError(filter: {statuses: $statuses}) {
    __typename
    ... on Runs { results { runId status jobName } }
    ... on PythonError { message }
  }
}
"""

RUN_STATUS_QUERY = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on PythonError { message }
  }
}
"""


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


def free_port() -> int:
    """A port that was free on loopback a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


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


@dataclass
class _Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


class DagsterServerError(RuntimeError):
    """The server did not start, or answered with an error."""


class DagsterServer:
    """`with DagsterServer(workdir, env=...) as server:`; `server.url` is the webserver's URL."""

    def __init__(
        self,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        launcher: Launcher = "dg dev",
        startup_timeout: float = 120.0,
        stop_timeout: float = 15.0,
        dagster_yaml: Path = SHIPPED_DAGSTER_YAML,
    ) -> None:
        self.workdir = workdir
        self.home = workdir / "dagster_home"
        self.data_dir = workdir / "data"
        self.log_dir = workdir / "logs"
        self.launcher = launcher
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self._extra_env = dict(env or {})
        self._services: list[_Service] = []
        # The instance settings copied into DAGSTER_HOME (e.g. storage on PostgreSQL).
        self.dagster_yaml = dagster_yaml

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every Dagster process (and, through them, of every run)."""
        return subprocess_environment(
            {
                "DAGSTER_HOME": str(self.home),
                "FULFILLMENT_DATA_DIR": str(self.data_dir),
                "RUNTIME__DLTHUB_TELEMETRY": "false",
                **self._extra_env,
            }
        )

    def _commands(self) -> list[tuple[str, list[str]]]:
        workspace = ["-w", str(REPO_ROOT / "workspace.yaml")]
        address = ["-h", HOST, "-p", str(self.port)]
        if self.launcher == "dg dev":
            return [("dg-dev", [str(BIN_DIR / "dg"), "dev", *workspace, *address])]
        # The code server log level `dagster dev` uses, so the webserver logs alike.
        webserver = [
            str(BIN_DIR / "dagster-webserver"),
            *workspace,
            *address,
            "--code-server-log-level",
            "warning",
        ]
        daemon = [str(BIN_DIR / "dagster-daemon"), "run", *workspace]
        return [("webserver", webserver), ("daemon", daemon)]

    def start(self) -> Self:
        """Start the services and wait until the code location is loaded (bounded)."""
        if self._services:
            raise DagsterServerError("DagsterServer can only be started once")
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.dagster_yaml, self.home / "dagster.yaml")
        self.port = free_port()
        env = self.env
        try:
            for name, command in self._commands():
                log_path = self.log_dir / f"{name}.log"
                with log_path.open("ab") as log:
                    # A session (and process group) of its own: stop() ends the code servers and
                    # run workers these services spawn too, and nothing else.
                    process = subprocess.Popen(
                        command,
                        cwd=REPO_ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                self._services.append(_Service(name, process, log_path))
                # One at a time: two services creating a fresh instance's SQLite storage at
                # once race on it ("table alembic_version already exists"); `dagster dev`
                # creates it before it starts either. Once the webserver serves, it exists.
                self.wait_until_loaded()
        except BaseException:
            self.stop()
            raise
        return self

    # --- GraphQL -------------------------------------------------------------------------------

    def graphql(
        self, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The `data` of one GraphQL request; GraphQL errors raise."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise DagsterServerError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def _check_alive(self) -> None:
        for service in self._services:
            if service.process.poll() is not None:
                raise DagsterServerError(
                    f"{service.name} exited with {service.process.returncode}:\n"
                    + self.log_tail(service)
                )

    def wait_until_loaded(self) -> None:
        """Until GraphQL answers and every code location is loaded; a load error raises."""
        deadline = time.monotonic() + self.startup_timeout
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                workspace = self.graphql(WORKSPACE_QUERY, timeout=5)["workspaceOrError"]
            except (OSError, urllib.error.URLError, DagsterServerError) as problem:
                last_problem = repr(problem)
                time.sleep(0.5)
                continue
            if workspace["__typename"] != "Workspace":
                raise DagsterServerError(f"workspace error: {workspace}")
            entries = workspace["locationEntries"]
            for entry in entries:
                location = entry["locationOrLoadError"] or {}
                if location.get("__typename") == "PythonError":
                    raise DagsterServerError(
                        f"code location {entry['name']} failed to load: {location['message']}\n"
                        f"{''.join(location.get('stack') or [])}"
                    )
            if entries and all(
                entry["loadStatus"] == "LOADED"
                and (entry["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"
                for entry in entries
            ):
                return
            last_problem = f"locations: {[(e['name'], e['loadStatus']) for e in entries]}"
            time.sleep(0.5)
        raise DagsterServerError(
            f"{self.url} not ready within {self.startup_timeout:.0f} s ({last_problem}):\n"
            + self.log_tail()
        )

    def run_status(self, run_id: str) -> str:
        result = self.graphql(RUN_STATUS_QUERY, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise DagsterServerError(f"run {run_id}: {result}")
        return result["status"]

    def wait_for_run(self, run_id: str, timeout: float = 180.0) -> str:
        """The run's final status, once it has one (bounded)."""
        deadline = time.monotonic() + timeout
        status = "unknown"
        while time.monotonic() < deadline:
            self._check_alive()
            status = self.run_status(run_id)
            if status in FINISHED_STATUSES:
                return status
            time.sleep(1)
        raise DagsterServerError(
            f"run {run_id} still {status} after {timeout:.0f} s:\n{self.log_tail()}"
        )

    def runs_in_progress(self) -> list[dict[str, Any]]:
        result = self.graphql(RUNS_QUERY, {"statuses": list(IN_PROGRESS_STATUSES)})["runsOrError"]
        if result["__typename"] != "Runs":
            raise DagsterServerError(f"runs: {result}")
        return result["results"]

    def wait_until_idle(self, timeout: float = 180.0) -> None:
        """Until every running sensor has finished a tick and no run is queued or in progress.

        The project's freshness sensor runs by default and requests a refresh as soon as the
        daemon starts, against a table never loaded. Two runs writing the one DuckDB file at once
        collide on its lock, so a test launches its own run only once that one is over.
        """
        deadline = time.monotonic() + timeout
        waiting_for: object = "nothing yet"
        while time.monotonic() < deadline:
            self._check_alive()
            sensors = [
                sensor
                for entry in self.graphql(SENSORS_QUERY)["workspaceOrError"]["locationEntries"]
                for repository in (entry["locationOrLoadError"] or {}).get("repositories", [])
                for sensor in repository["sensors"]
                if sensor["sensorState"]["status"] == "RUNNING"
            ]
            # A tick still STARTED may be about to submit its run, which would not show yet.
            unticked = [
                sensor["name"]
                for sensor in sensors
                if not sensor["sensorState"]["ticks"]
                or sensor["sensorState"]["ticks"][0]["status"] == "STARTED"
            ]
            running = self.runs_in_progress()
            if not unticked and not running:
                return
            waiting_for = {"sensors without a finished tick": unticked, "runs in progress": running}
            time.sleep(1)
        raise DagsterServerError(
            f"not idle within {timeout:.0f} s, waiting for {waiting_for}:\n{self.log_tail()}"
        )

    def sensor_ticks(self, name: str) -> list[dict[str, Any]]:
        """The sensor's latest ticks, newest first: status, times, skip reason, error, log."""
        for entry in self.graphql(SENSOR_TICKS_QUERY)["workspaceOrError"]["locationEntries"]:
            for repository in (entry["locationOrLoadError"] or {}).get("repositories", []):
                for sensor in repository["sensors"]:
                    if sensor["name"] == name:
                        return sensor["sensorState"]["ticks"]
        raise DagsterServerError(f"no sensor {name}")

    def wait_for_sensor_ticks(
        self, name: str, count: int, after: float, timeout: float = 120.0
    ) -> list[dict[str, Any]]:
        """Until `count` ticks of the sensor that started after `after` (a Unix time) have ended;
        those ticks, newest first (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            ended = [
                tick
                for tick in self.sensor_ticks(name)
                if tick["timestamp"] > after and tick["status"] != "STARTED"
            ]
            if len(ended) >= count:
                return ended
            if time.monotonic() > deadline:
                raise DagsterServerError(
                    f"{name}: {len(ended)} of {count} ticks after {after} within "
                    f"{timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    # --- logs ----------------------------------------------------------------------------------

    def log_lines(self) -> list[str]:
        """Every line the services (and their code servers and runs) printed, colours removed."""
        lines = []
        for service in self._services:
            text = service.log_path.read_text(encoding="utf-8", errors="replace")
            lines += [f"[{service.name}] {_ANSI.sub('', line)}" for line in text.splitlines()]
        return lines

    def deprecation_lines(self) -> list[str]:
        """Log lines that warn about a deprecated, superseded, preview or beta API."""
        return [line for line in self.log_lines() if DEPRECATION_PATTERN.search(line)]

    def log_tail(self, service: _Service | None = None, lines: int = 40) -> str:
        services = [service] if service else self._services
        return "\n".join(
            f"--- {s.log_path} (last {lines} lines) ---\n"
            + "\n".join(s.log_path.read_text(errors="replace").splitlines()[-lines:])
            for s in services
            if s.log_path.exists()
        )

    # --- teardown ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Interrupt every service's process group, then kill what is left of them (bounded)."""
        _stop_groups([service.process for service in self._services], self.stop_timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_groups(processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGINT (Dagster's graceful shutdown) to the groups these processes lead, then SIGKILL.

    All groups at once: each service takes seconds to shut down its code server.
    """

    def running(process: subprocess.Popen[bytes]) -> bool:
        # poll() first: it reaps an exited leader, which would otherwise keep the group alive.
        return process.poll() is None or _group_alive(process.pid)

    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGKILL, 5.0)):
        alive = [process for process in processes if running(process)]
        if not alive:
            break
        for process in alive:
            # start_new_session: each service leads a process group of its own, pgid = pid.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(running(process) for process in alive):
            time.sleep(0.1)
    left = [process.pid for process in processes if running(process)]
    if left:
        raise DagsterServerError(f"process groups {left} did not stop")


@dataclass
class ServedProject:
    """The demo API and a Dagster server whose runs read from it."""

    api: DemoApiServer
    dagster: DagsterServer
    api_key: str


@contextmanager
def served_project(
    workdir: Path,
    *,
    api_key: str,
    records: int = 2000,
    launcher: Launcher = "dg dev",
    env: Mapping[str, str] | None = None,
    dagster_yaml: Path = SHIPPED_DAGSTER_YAML,
) -> Iterator[ServedProject]:
    """The demo API in this process (a thread on loopback) and Dagster serving the project
    against it, with `env` added to the Dagster processes' environment; both stopped at the
    end."""
    with DemoApiServer(DemoApiOptions(records=records, api_key=api_key), port=0) as api:
        served_env = {
            "SOURCES__FULFILLMENT__BASE_URL": api.url,
            "SOURCES__FULFILLMENT__API_KEY": api_key,
            # The daemon judges freshness every 30 s by default; until it has, the status of a
            # new materialization is UNKNOWN. Tests should not sit through that.
            "FRESHNESS_DAEMON_INTERVAL_SECONDS": "3",
            **(env or {}),
        }
        with DagsterServer(
            workdir, env=served_env, launcher=launcher, dagster_yaml=dagster_yaml
        ) as dagster:
            yield ServedProject(api=api, dagster=dagster, api_key=api_key)
