"""`DagsterServer`: the processes of `process.py` answering the GraphQL of `graphql.py`, with the
bounded waits the tests need (code location loaded, run finished, idle, sensor ticks).
`served_project` wires in the demo API as well."""

from __future__ import annotations

import subprocess
import time
import urllib.error
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer
from fulfillment_assets_tests.served.cli import SHIPPED_DAGSTER_YAML, code_server_health_check
from fulfillment_assets_tests.served.graphql import (
    FINISHED_STATUSES,
    DagsterGraphQL,
    DagsterGraphQLError,
)
from fulfillment_assets_tests.served.process import (
    CODE_SERVER,
    HOST,
    DagsterProcesses,
    DagsterServerError,
    Launcher,
)


class DagsterServer(DagsterProcesses):
    """`with DagsterServer(workdir, env=...) as server:`; `server.url` is the webserver's URL."""

    _graphql_api: DagsterGraphQL | None = None

    @property
    def graphql_api(self) -> DagsterGraphQL:
        """The webserver's GraphQL API (once started: the port is chosen then)."""
        if self.port == 0:
            raise DagsterServerError("DagsterServer is not started")
        if self._graphql_api is None:
            self._graphql_api = DagsterGraphQL(HOST, self.port)
        return self._graphql_api

    def graphql(
        self, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The `data` of one GraphQL request; GraphQL errors raise."""
        return self.graphql_api.query(query, variables, timeout)

    def run_status(self, run_id: str) -> str:
        return self.graphql_api.run_status(run_id)

    def runs_in_progress(self) -> list[dict[str, Any]]:
        return self.graphql_api.runs_in_progress()

    def sensor_ticks(self, name: str) -> list[dict[str, Any]]:
        """The sensor's latest ticks, newest first: status, times, skip reason, error, log."""
        return self.graphql_api.sensor_ticks(name)

    def wait_until_ready(self, service: str) -> None:
        if service == CODE_SERVER:
            self.wait_until_code_server_serves()
        else:
            self.wait_until_loaded()

    def wait_until_code_server_serves(self) -> None:
        """Until the production topology's code server has loaded the code and serves (bounded):
        the webserver and the daemon started before would find no code location to load."""
        deadline = time.monotonic() + self.startup_timeout
        check = code_server_health_check(self.code_server_port, HOST)
        while True:
            self._check_alive()
            result = subprocess.run(check, capture_output=True, text=True, timeout=60)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise DagsterServerError(
                    f"code server on {HOST}:{self.code_server_port} not serving within "
                    f"{self.startup_timeout:.0f} s ({result.stdout.strip()[-300:]}):\n"
                    + self.log_tail()
                )
            time.sleep(0.5)

    def wait_until_loaded(self) -> None:
        """Until GraphQL graphql_api and every code location is loaded; a load error raises."""
        deadline = time.monotonic() + self.startup_timeout
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                workspace = self.graphql_api.workspace(timeout=5)
            except (OSError, urllib.error.URLError, DagsterGraphQLError) as problem:
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
                for sensor in self.graphql_api.sensors()
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
