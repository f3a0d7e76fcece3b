"""The project as docs/configuration.md "Outgrowing one machine" deploys it: `dg dev` with the
Dagster instance storage on PostgreSQL (docs/dagster.postgres.yaml, as the README shows it) and
the warehouse on the same server, a `fulfillment_refresh` run launched through GraphQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from fulfillment_assets import settings
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets_tests.helpers import CHECK_NAMES, TEST_API_KEY
from fulfillment_assets_tests.postgres_server import PostgresServer
from fulfillment_assets_tests.served.process import HOST
from fulfillment_assets_tests.served.server import ServedProject, served_project

RECORDS = 1500
POSTGRES_YAML = settings.PROJECT_ROOT / "docs" / "dagster.postgres.yaml"
README = settings.PROJECT_ROOT / "README.md"
CHECKS_QUERY = """
query Checks($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetChecksOrError {
      ... on AssetChecks {
        checks { name executionForLatestMaterialization { runId status } }
      }
    }
  }
}
"""


@pytest.fixture
def dagster_url(postgres_server: PostgresServer) -> str:
    """A database of its own for the Dagster instance's storage."""
    return postgres_server.create_database()


@pytest.fixture
def project(
    tmp_path: Path,
    postgres_server: PostgresServer,
    dagster_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ServedProject]:
    warehouse_url = postgres_server.create_database()
    env = {
        "DAGSTER_POSTGRES_URL": dagster_url,
        "FULFILLMENT_DESTINATION": "postgres",
        "DESTINATION__POSTGRES__CREDENTIALS": warehouse_url,
    }
    # This process reads the warehouse the served runs write.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with served_project(
        tmp_path, api_key=TEST_API_KEY, records=RECORDS, env=env, dagster_yaml=POSTGRES_YAML
    ) as served:
        yield served


def test_the_readme_shows_the_tested_dagster_yaml() -> None:
    assert POSTGRES_YAML.read_text() in README.read_text()


@pytest.mark.slow
def test_dg_dev_with_storage_and_warehouse_on_postgres(
    project: ServedProject, dagster_url: str
) -> None:
    project.dagster.wait_until_idle()
    client = DagsterGraphQLClient(HOST, port_number=project.dagster.port, timeout=30)

    run_id = client.submit_job_execution("fulfillment_refresh")

    deadline = time.monotonic() + 180
    status = client.get_run_status(run_id)
    while status not in (
        DagsterRunStatus.SUCCESS,
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.CANCELED,
    ):
        assert time.monotonic() < deadline, project.dagster.log_tail()
        time.sleep(1)
        status = client.get_run_status(run_id)
    assert status == DagsterRunStatus.SUCCESS, project.dagster.log_tail(lines=80)
    with psycopg2.connect(dagster_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
        assert cursor.fetchall() == [("SUCCESS",)]
    # The run's events are in PostgreSQL: the webserver reads the checks' results from there.
    (raw,) = project.dagster.graphql(
        CHECKS_QUERY, {"keys": [{"path": ["fulfillment", "fulfillment_data"]}]}
    )["assetNodes"]
    checks = raw["assetChecksOrError"]["checks"]
    # Every check the project defines on the raw table (all but the models' reconciliation).
    assert {c["name"] for c in checks} == CHECK_NAMES - {"validated_plus_rejected_equals_raw"}
    assert all(c["executionForLatestMaterialization"]["runId"] == run_id for c in checks), checks
    # The warehouse is the PostgreSQL database: every record and the models are there.
    warehouse = Warehouse()
    assert warehouse.query("SELECT count(*) FROM fulfillment.fulfillment_data") == [(RECORDS,)]
    ((validated,),) = warehouse.query("SELECT count(*) FROM fulfillment.orders_validated")
    ((rejected,),) = warehouse.query("SELECT count(*) FROM fulfillment.orders_rejected")
    assert validated + rejected == RECORDS
