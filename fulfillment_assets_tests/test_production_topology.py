"""The production topology of `deploy/` (docs/deployment.md), as processes on one machine: the code
location served by the command deploy/Dockerfile runs (`dagster code-server start`) in a process
of its own, `dagster-webserver` and `dagster-daemon run` loading it through deploy/workspace.yaml,
the instance on PostgreSQL (deploy/dagster.yaml as shipped), the warehouse on PostgreSQL, the demo
API on loopback. Runs launched through GraphQL and by the freshness sensor succeed; a run whose
worker is SIGKILLed is failed, alone (by the code server that spawned it or the project's dead-run
sensor, whichever looks first) or with its code server (by the dead-run sensor, once the code
server is back), and the next run proceeds.

What Docker adds (images built, containers, a network) is not run here: no Docker on the machines
that run the tests. The fast tests below hold deploy/'s compose file and images to the commands,
files and environment the slow test runs."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster_graphql import DagsterGraphQLClient

from fulfillment_assets import settings
from fulfillment_assets.automation.freshness import REFRESH_JOB_NAME
from fulfillment_assets.demo_api import make_record
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.run_liveness import liveness_dir
from fulfillment_assets_tests.helpers import TEST_API_KEY
from fulfillment_assets_tests.postgres_server import PostgresServer
from fulfillment_assets_tests.served.cli import (
    CODE_LOCATION_DOCKERFILE,
    CODE_SERVER_HOST_VARIABLE,
    CODE_SERVER_PORT_VARIABLE,
    DEPLOY_COMPOSE_FILE,
    DEPLOY_DAGSTER_YAML,
    DEPLOY_DIR,
    DEPLOY_WORKSPACE_YAML,
    REPO_ROOT,
    code_server_health_check,
    shipped_code_server_arguments,
    wait_for,
)
from fulfillment_assets_tests.served.process import CODE_SERVER, HOST
from fulfillment_assets_tests.served.server import ServedProject, served_project

RECORDS = 1500
RUN_TIMEOUT_SECONDS = 240
# Everything below, on a shared 2-core machine: start, four runs, two kills, a restart.
TEST_TIMEOUT_SECONDS = 900
# The freshness sensor's tag on the runs it requests (automation/freshness.py).
REQUESTED_BY_FRESHNESS = {"fulfillment/trigger": "freshness"}
DEAD_RUN_SENSOR = "fulfillment_dead_run_sensor"
# The page a run to be killed waits on: it answers only when the run is gone (or after this).
HANG_SECONDS = 180
COMPOSE_CODE_SERVER = "code-server"
HOST_SERVICES = ("webserver", "daemon")


@pytest.fixture
def project(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServedProject]:
    env = {
        # A database for the instance's storage, another for the warehouse.
        "DAGSTER_POSTGRES_URL": postgres_server.create_database(),
        "FULFILLMENT_DESTINATION": "postgres",
        "DESTINATION__POSTGRES__CREDENTIALS": postgres_server.create_database(),
        "FULFILLMENT_DEAD_RUN_SENSOR_INTERVAL_SECONDS": "5",
    }
    # This process reads the warehouse the served runs write.
    for name in ("FULFILLMENT_DESTINATION", "DESTINATION__POSTGRES__CREDENTIALS"):
        monkeypatch.setenv(name, env[name])
    with served_project(
        tmp_path,
        api_key=TEST_API_KEY,
        records=RECORDS,
        launcher="code-server+webserver+daemon",
        env=env,
        dagster_yaml=DEPLOY_DAGSTER_YAML,
    ) as served:
        yield served


def _raw_amounts() -> list[tuple[Any, ...]]:
    return Warehouse().query("SELECT id, amount FROM fulfillment.fulfillment_data ORDER BY id")


def _served_amounts(version: int) -> list[tuple[int, float]]:
    """Every record of the demo API in this version, as the raw table should hold it."""
    return [(i, make_record(i, version=version)["amount"]) for i in range(1, RECORDS + 1)]


def _run_worker(project: ServedProject, run_id: str) -> int:
    """The PID of the process executing the run, once it is fetching pages (bounded).

    Each run's process holds a liveness lock file named after the run, with its PID in it
    (warehouse/run_liveness.py): that names the run worker exactly, where a process listing would
    show the code server's other processes alongside.
    """
    wait_for(
        lambda: any(liveness_dir().glob(f"{run_id}.*.lock")),
        RUN_TIMEOUT_SECONDS,
        f"run {run_id} to start executing (its liveness lock in {liveness_dir()})",
    )
    (lock,) = liveness_dir().glob(f"{run_id}.*.lock")
    pid = json.loads(lock.read_text())["pid"]
    wait_for(lambda: len(project.api.requests) >= 2, 120, f"run {run_id} to fetch pages")
    # The run executes in the code server's process tree (/proc: its process group), not in the
    # webserver's or the daemon's: that is what the default run launcher does here.
    assert os.getpgid(pid) == project.dagster.process_group(CODE_SERVER), (
        f"run {run_id}'s worker {pid} is not a process of the code server"
    )
    return pid


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT_SECONDS)
def test_runs_from_graphql_and_the_sensor_succeed_and_a_killed_worker_never_blocks(
    project: ServedProject,
) -> None:
    dagster, api = project.dagster, project.api
    assert liveness_dir().parent == dagster.data_dir.resolve()  # the runs' data dir, read here
    client = DagsterGraphQLClient(HOST, port_number=dagster.port, timeout=30)

    # The raw table was never loaded: the freshness sensor's first tick requests a refresh.
    wait_for(
        lambda: dagster.graphql_api.runs(tags=REQUESTED_BY_FRESHNESS),
        120,
        "the freshness sensor to request a refresh of the never-loaded raw table",
        poll=1,
    )
    (requested,) = dagster.graphql_api.runs(tags=REQUESTED_BY_FRESHNESS)
    status = dagster.wait_for_run(requested["runId"], RUN_TIMEOUT_SECONDS)
    assert status == "SUCCESS", dagster.log_tail(lines=80)
    assert _raw_amounts() == _served_amounts(version=0)

    # A run launched through GraphQL loads the API's next version of every record.
    api.configure(data_version=1)
    launched = client.submit_job_execution(REFRESH_JOB_NAME)
    assert dagster.wait_for_run(launched, RUN_TIMEOUT_SECONDS) == "SUCCESS", dagster.log_tail()
    assert _raw_amounts() == _served_amounts(version=1)

    # Runs held mid-extract by a page that does not answer, then killed.
    api.configure(hang_offset=settings.PAGE_LIMIT, hang_seconds=HANG_SECONDS)

    # The run worker alone, SIGKILLed: failed by whichever looks first, the code server that
    # spawned it (Dagster's gRPC server checks its run processes every 0.5 s) or the dead-run
    # sensor (its lock is free); both are seen to win, so the test does not say which.
    api.clear_requests()
    killed_alone = client.submit_job_execution(REFRESH_JOB_NAME)
    os.kill(_run_worker(project, killed_alone), signal.SIGKILL)
    assert dagster.wait_for_run(killed_alone, 60) == "FAILURE"

    # The next run proceeds (it executes), and is SIGKILLed with its code server, as the OOM
    # killer or a lost container would end both: nobody is left to tell the instance.
    api.clear_requests()
    killed_with_server = client.submit_job_execution(REFRESH_JOB_NAME)
    _run_worker(project, killed_with_server)
    dagster.kill(CODE_SERVER)
    assert dagster.run_status(killed_with_server) == "STARTED"

    # The code server back (compose's `restart: always`), the next run queued behind the dead
    # one (one ingestion at a time): the dead-run sensor fails the dead one, the next succeeds.
    dagster.restart(CODE_SERVER)
    dagster.wait_until_loaded()
    api.configure(hang_offset=None, data_version=2)
    after = client.submit_job_execution(REFRESH_JOB_NAME)
    assert dagster.wait_for_run(after, RUN_TIMEOUT_SECONDS) == "SUCCESS", dagster.log_tail()
    assert dagster.run_status(killed_with_server) == "FAILURE"
    marked = [tick["skipReason"] or "" for tick in dagster.sensor_ticks(DEAD_RUN_SENSOR)]
    assert any(killed_with_server in reason for reason in marked), marked
    assert _raw_amounts() == _served_amounts(version=2)

    assert not dagster.deprecation_lines(), "\n".join(dagster.deprecation_lines())


# --- the shipped files are the ones the test runs --------------------------------------------


def _compose_services() -> dict[str, Any]:
    return yaml.safe_load(DEPLOY_COMPOSE_FILE.read_text())["services"]


def _option(arguments: list[str], option: str) -> str:
    return arguments[arguments.index(option) + 1]


def test_the_code_location_image_serves_the_definitions_on_its_exposed_port() -> None:
    arguments = shipped_code_server_arguments()
    assert arguments[:3] == ["dagster", "code-server", "start"]
    assert _option(arguments, "-m") == "fulfillment_assets.definitions"
    # Reachable from the other containers, on the port the image exposes.
    assert _option(arguments, "-h") == "0.0.0.0"
    dockerfile = CODE_LOCATION_DOCKERFILE.read_text()
    assert f"EXPOSE {_option(arguments, '-p')}\n" in dockerfile
    # The location name the workspace's grpc_server entry gives.
    (entry,) = yaml.safe_load(DEPLOY_WORKSPACE_YAML.read_text())["load_from"]
    assert entry["grpc_server"]["location_name"] == _option(arguments, "--location-name")
    # The project with its PostgreSQL extra, at the tested versions.
    assert re.search(r'pip install .*-c constraints\.txt "\.\[postgres\]"', dockerfile)


def test_the_compose_file_wires_the_services_as_the_test_runs_them() -> None:
    services = _compose_services()
    assert set(services) == {"postgres", COMPOSE_CODE_SERVER, *HOST_SERVICES}
    code_server = services[COMPOSE_CODE_SERVER]
    assert code_server["build"]["dockerfile"] == str(
        CODE_LOCATION_DOCKERFILE.relative_to(REPO_ROOT)
    )
    port = _option(shipped_code_server_arguments(), "-p")
    # The health check the test waits on before it starts the webserver and the daemon.
    executable, *arguments = code_server_health_check(int(port))
    assert code_server["healthcheck"]["test"] == ["CMD", Path(executable).name, *arguments]
    # The runs execute in the code server: the warehouse and the instance's storage are set there.
    assert code_server["environment"]["FULFILLMENT_DESTINATION"] == "postgres"
    assert {"DAGSTER_POSTGRES_URL", "DESTINATION__POSTGRES__CREDENTIALS"} <= set(
        code_server["environment"]
    )
    for name in HOST_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile.dagster"
        environment = service["environment"]
        # deploy/workspace.yaml's address of the code server, and nothing of the project's
        # settings: the test gives the webserver and the daemon the same (`host_env`).
        assert environment[CODE_SERVER_HOST_VARIABLE] == COMPOSE_CODE_SERVER
        assert environment[CODE_SERVER_PORT_VARIABLE] == port
        assert set(environment) == {
            "DAGSTER_POSTGRES_URL",
            CODE_SERVER_HOST_VARIABLE,
            CODE_SERVER_PORT_VARIABLE,
        }
        assert service["depends_on"][COMPOSE_CODE_SERVER] == {"condition": "service_healthy"}
    # The commands the test runs, with the workspace the image puts in DAGSTER_HOME.
    assert services["webserver"]["entrypoint"][0] == "dagster-webserver"
    assert services["daemon"]["entrypoint"][:2] == ["dagster-daemon", "run"]
    for name in HOST_SERVICES:
        entrypoint = services[name]["entrypoint"]
        assert entrypoint[entrypoint.index("-w") + 1] == DEPLOY_WORKSPACE_YAML.name


def test_the_dagster_image_holds_the_tested_instance_and_workspace_at_the_pinned_versions() -> None:
    dockerfile = (DEPLOY_DIR / "Dockerfile.dagster").read_text()
    copied = (
        f"COPY deploy/{DEPLOY_DAGSTER_YAML.name} deploy/{DEPLOY_WORKSPACE_YAML.name} $DAGSTER_HOME/"
    )
    assert copied in dockerfile
    assert "WORKDIR $DAGSTER_HOME" in dockerfile
    installed = re.search(r"-c /tmp/constraints.txt \\\n\s+(.+)\n", dockerfile)
    assert installed is not None
    pinned = (REPO_ROOT / "constraints.txt").read_text().lower()
    for package in installed.group(1).split():
        assert re.search(rf"^{re.escape(package)}==", pinned, re.MULTILINE), package
    # The instance's storage on PostgreSQL through the variable both compose and the test set.
    instance = yaml.safe_load(DEPLOY_DAGSTER_YAML.read_text())
    assert instance["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}
    # The default run launcher cannot resume a run (only launchers with health checks can).
    assert instance["run_monitoring"].get("max_resume_run_attempts", 0) == 0
