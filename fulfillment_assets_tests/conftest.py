"""Real parts for every test: the demo API on an ephemeral loopback port, a DuckDB file and dlt
working dir in a tmp dir, and a Dagster instance of the test's own.

Tests marked `every_destination` run on DuckDB and on a real PostgreSQL server (see
`postgres_server.py`): the `destination` fixture is parametrized for them. On PostgreSQL the
warehouse and the test's Dagster instance live in a database of the test's own.
Fixtures and pytest hooks only: the helpers the tests share are in `helpers.py`."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, instance_for_test

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer
from fulfillment_assets_tests.helpers import TEST_API_KEY, TEST_BACKOFF_FACTOR
from fulfillment_assets_tests.postgres_server import PostgresServer
from fulfillment_assets_tests.served.cli import SHIPPED_DAGSTER_YAML

# The PostgreSQL run of a test is slow (a server of the session's own, a database per test):
# the fast lane (`-m "not slow"`) runs the DuckDB one only.
DESTINATIONS = ("duckdb", pytest.param("postgres", marks=pytest.mark.slow))


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (a CI timeout, `kill`) ends the session like Ctrl-C: fixtures are torn down, so the
    # PostgreSQL server the tests started is stopped and removed.
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("every_destination"):
        metafunc.parametrize("destination", DESTINATIONS, indirect=True)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data dir (DuckDB file, dlt pipelines dir) and no ambient config."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("FULFILLMENT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("SOURCES__FULFILLMENT__BACKOFF_FACTOR", TEST_BACKOFF_FACTOR)
    for name in list(os.environ):
        if name.startswith(("SOURCES__FULFILLMENT__API_KEY", "DESTINATION__")) or name in (
            "FULFILLMENT_DESTINATION",
            "FULFILLMENT_ACCEPTED_STATUSES",
        ):
            monkeypatch.delenv(name)
    return data_dir


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session, started on first use, removed at the end."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(autouse=True)
def destination(
    request: pytest.FixtureRequest, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The warehouse of the test: DuckDB unless parametrized; on PostgreSQL a fresh database."""
    name = getattr(request, "param", "duckdb")
    if name == "postgres":
        server = request.getfixturevalue("postgres_server")
        monkeypatch.setenv("FULFILLMENT_DESTINATION", "postgres")
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", server.create_database())
    return name


@pytest.fixture
def demo_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoApiServer]:
    """The demo API with realistic data, wired into the source's configuration."""
    with DemoApiServer(DemoApiOptions(records=1234, api_key=TEST_API_KEY), port=0) as api:
        monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", api.url)
        monkeypatch.setenv("SOURCES__FULFILLMENT__API_KEY", TEST_API_KEY)
        yield api


@pytest.fixture(scope="module")
def demo_api_per_module(request: pytest.FixtureRequest) -> Iterator[DemoApiServer]:
    """One demo API per test module, started with the module's `BASE` options: starting and
    stopping uvicorn per test would cost ~0.25 s each."""
    with DemoApiServer(request.module.BASE, port=0) as server:
        yield server


@pytest.fixture
def api(demo_api_per_module: DemoApiServer, request: pytest.FixtureRequest) -> DemoApiServer:
    """The module's demo API, back to the module's `BASE` options and with no requests logged."""
    demo_api_per_module.configure(request.module.BASE)
    demo_api_per_module.clear_requests()
    return demo_api_per_module


@pytest.fixture
def instance(destination: str) -> Iterator[DagsterInstance]:
    """A Dagster instance of the test's own; on PostgreSQL its storage is on the server too."""
    overrides = None
    if destination == "postgres":
        dsn = os.environ["DESTINATION__POSTGRES__CREDENTIALS"]
        overrides = {"storage": {"postgres": {"postgres_url": dsn}}}
    with instance_for_test(overrides=overrides) as test_instance:
        yield test_instance


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME of the test's own, for runs started from the command line."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The project's instance config: telemetry off, one run and one ingestion at a time.
    shutil.copy(SHIPPED_DAGSTER_YAML, home / "dagster.yaml")
    # Create the storage now: two children creating a fresh SQLite storage at once race on it.
    with DagsterInstance.from_config(str(home)):
        pass
    return home
