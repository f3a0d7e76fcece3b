"""The project served by Dagster's webserver and daemon, driven through GraphQL: a log free of
deprecation warnings, a `fulfillment_refresh` run launched with DagsterGraphQLClient, and the
raw table's check results and row count as the UI reads them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from fulfillment_assets import settings
from fulfillment_assets_tests.helpers import TEST_API_KEY
from fulfillment_assets_tests.served.process import HOST
from fulfillment_assets_tests.served.server import ServedProject, served_project

pytestmark = pytest.mark.slow

RECORDS = 2000
RUN_TIMEOUT_SECONDS = 180
FRESHNESS_TIMEOUT_SECONDS = 60
# The demo API's defaults: 2 % of records without customer_id, 1 % without order_status.
NULL_CUSTOMER_IDS = 40
NULL_ORDER_STATUSES = 20
PASSING_CHECKS = {
    "schema_contract",
    "order_status_accepted",
    "id_unique_and_not_null",
    "field_names_distinct",
    "updated_at_never_goes_back",
    "values_of_their_column_type",
    "walk_complete",
    "no_rows_marked_deleted",
}
WARNING_CHECKS = {
    "customer_id_not_null": NULL_CUSTOMER_IDS,
    "order_status_not_null": NULL_ORDER_STATUSES,
}

METADATA_FIELDS = """
  label
  __typename
  ... on IntMetadataEntry { intValue }
  ... on FloatMetadataEntry { floatValue }
  ... on TextMetadataEntry { text }
  ... on JsonMetadataEntry { jsonString }
"""

ASSETS_QUERY = f"""
query Assets($keys: [AssetKeyInput!]) {{
  assetNodes(assetKeys: $keys) {{
    assetKey {{ path }}
    metadataEntries {{ {METADATA_FIELDS} }}
    assetMaterializations(limit: 1) {{ runId metadataEntries {{ {METADATA_FIELDS} }} }}
    internalFreshnessPolicy {{
      __typename
      ... on TimeWindowFreshnessPolicy {{ failWindowSeconds warnWindowSeconds }}
    }}
    assetChecksOrError {{
      __typename
      ... on AssetChecks {{
        checks {{
          name
          blocking
          executionForLatestMaterialization {{
            runId
            status
            evaluation {{
              success
              severity
              description
              metadataEntries {{ {METADATA_FIELDS} }}
            }}
          }}
        }}
      }}
    }}
  }}
}}
"""


def _key(*path: str) -> dict[str, list[str]]:
    return {"path": list(path)}


RAW_KEY = _key("fulfillment", "fulfillment_data")
VALIDATED_KEY = _key("fulfillment", "orders_validated")
REJECTED_KEY = _key("fulfillment", "orders_rejected")


def _metadata(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """label -> value of GraphQL metadata entries (int, float or text)."""
    return {
        entry["label"]: next(
            (
                entry[field]
                for field in ("intValue", "floatValue", "text", "jsonString")
                if field in entry
            ),
            entry["__typename"],
        )
        for entry in entries
    }


def _freshness_status(project: ServedProject, key: dict[str, list[str]]) -> str:
    """The asset's freshness status once the daemon has judged its latest materialization."""
    query = "query F($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) "
    query += "{ freshnessStatusInfo { freshnessStatus } } }"
    deadline = time.monotonic() + FRESHNESS_TIMEOUT_SECONDS
    while True:
        (node,) = project.dagster.graphql(query, {"keys": [key]})["assetNodes"]
        status = node["freshnessStatusInfo"]["freshnessStatus"]
        if status != "UNKNOWN" or time.monotonic() > deadline:
            return status
        time.sleep(1)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    """The demo API and the served project, once for the module."""
    with served_project(
        tmp_path_factory.mktemp("dagster_graphql"), api_key=TEST_API_KEY, records=RECORDS
    ) as served:
        yield served


@pytest.fixture(scope="module")
def refresh_run_id(project: ServedProject) -> str:
    """A `fulfillment_refresh` run launched through DagsterGraphQLClient, waited for."""
    # The freshness sensor requests a refresh on its own when the daemon starts; a second run
    # on the same DuckDB file at the same time would fail on its lock, so that one goes first.
    project.dagster.wait_until_idle()
    project.api.clear_requests()
    client = DagsterGraphQLClient(HOST, port_number=project.dagster.port, timeout=30)
    run_id = client.submit_job_execution("fulfillment_refresh")
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    status = client.get_run_status(run_id)
    while status not in (
        DagsterRunStatus.SUCCESS,
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.CANCELED,
    ):
        assert time.monotonic() < deadline, (
            f"run {run_id} still {status.value} after {RUN_TIMEOUT_SECONDS} s:\n"
            + project.dagster.log_tail()
        )
        time.sleep(1)
        status = client.get_run_status(run_id)
    assert status == DagsterRunStatus.SUCCESS, (
        f"run {run_id} ended {status.value}:\n" + project.dagster.log_tail(lines=80)
    )
    return run_id


def test_served_project_logs_no_deprecation_warnings(project: ServedProject) -> None:
    # Past loading: the sensor's first tick and the run it requests run the project's code too.
    project.dagster.wait_until_idle()
    lines = project.dagster.deprecation_lines()
    assert not lines, (
        f"the Dagster log ({project.dagster.log_dir}) warns about deprecated, superseded, "
        "preview or beta APIs:\n" + "\n".join(lines)
    )


def test_refresh_job_runs_through_the_graphql_client(
    project: ServedProject, refresh_run_id: str
) -> None:
    assert project.dagster.run_status(refresh_run_id) == "SUCCESS"
    # The run's subprocess read every page from the demo API, with the key it was given.
    requests = project.api.requests
    assert requests and all(request.status == 200 for request in requests), requests
    assert {request.offset for request in requests} >= set(range(0, RECORDS, settings.PAGE_LIMIT))


def test_raw_table_check_results_row_count_and_freshness(
    project: ServedProject, refresh_run_id: str
) -> None:
    keys = [RAW_KEY, VALIDATED_KEY, REJECTED_KEY]
    nodes = project.dagster.graphql(ASSETS_QUERY, {"keys": keys})["assetNodes"]
    by_key = {"/".join(node["assetKey"]["path"]): node for node in nodes}
    raw = by_key["fulfillment/fulfillment_data"]

    # The definition's metadata is all something the UI can show: no library objects.
    definition = _metadata(raw["metadataEntries"])
    assert not [label for label in definition if label.startswith("dagster_dlt/")], definition
    assert "unserializable" not in str(definition), definition

    (materialization,) = raw["assetMaterializations"]
    assert materialization["runId"] == refresh_run_id
    stats = _metadata(materialization["metadataEntries"])
    # dlt's load jobs without the local paths of their files.
    assert "jobs" not in stats and "load_jobs" in stats
    assert stats["dagster/row_count"] == RECORDS
    assert stats["rows_loaded"] == RECORDS
    assert stats["null_customer_id_count"] == NULL_CUSTOMER_IDS
    assert stats["null_order_status_count"] == NULL_ORDER_STATUSES
    # The API's shape in force, as the raw table's page shows it: the seed's, and no secret.
    shape = json.loads(stats["api_shape"])
    assert shape["path"] == "/v1/fulfillment" and shape["paginator"]["type"] == "offset"
    assert shape["auth"] == "api_key in the query as `api_key`"
    assert project.api_key not in stats["api_shape"]
    assert stats["walk_fetch"].startswith("read ahead")

    assert raw["assetChecksOrError"]["__typename"] == "AssetChecks"
    checks = {check["name"]: check for check in raw["assetChecksOrError"]["checks"]}
    assert set(checks) == PASSING_CHECKS | set(WARNING_CHECKS)
    for name, check in checks.items():
        assert check["blocking"], name
        execution = check["executionForLatestMaterialization"]
        assert execution is not None, f"{name} has no result for the latest materialization"
        assert execution["runId"] == refresh_run_id, name
        evaluation = execution["evaluation"]
        metadata = _metadata(evaluation["metadataEntries"])
        # field_names_distinct judges column names, not rows.
        if name != "field_names_distinct":
            assert metadata["rows_checked"] == RECORDS, name
        if name in WARNING_CHECKS:
            # Failed, but with WARN: shown in the UI, and the downstream tables were still built.
            assert execution["status"] == "FAILED", (name, evaluation)
            assert not evaluation["success"], name
            assert evaluation["severity"] == "WARN", name
            assert metadata["offending_rows"] == WARNING_CHECKS[name], (name, metadata)
            assert metadata["offending_fraction"] == pytest.approx(WARNING_CHECKS[name] / RECORDS)
        else:
            assert execution["status"] == "SUCCEEDED", (name, evaluation)
            assert evaluation["success"], name
            assert metadata.get("offending_rows", 0) == 0, (name, metadata)

    # The freshness policy the UI shows: a time window of 24 h (fail) / 12 h (warn), passing.
    assert raw["internalFreshnessPolicy"] == {
        "__typename": "TimeWindowFreshnessPolicy",
        "failWindowSeconds": 24 * 3600,
        "warnWindowSeconds": 12 * 3600,
    }
    assert _freshness_status(project, RAW_KEY) == "HEALTHY"

    # The warnings blocked nothing: validated + rejected were rebuilt in the same run, = raw.
    validated = by_key["fulfillment/orders_validated"]
    rejected = by_key["fulfillment/orders_rejected"]
    validated_rows = _metadata(validated["assetMaterializations"][0]["metadataEntries"])
    rejected_rows = _metadata(rejected["assetMaterializations"][0]["metadataEntries"])
    assert validated["assetMaterializations"][0]["runId"] == refresh_run_id
    assert rejected["assetMaterializations"][0]["runId"] == refresh_run_id
    assert validated_rows["dagster/row_count"] + rejected_rows["dagster/row_count"] == RECORDS
    (model_check,) = validated["assetChecksOrError"]["checks"]
    assert model_check["name"] == "validated_plus_rejected_equals_raw"
    assert model_check["executionForLatestMaterialization"]["runId"] == refresh_run_id
    assert model_check["executionForLatestMaterialization"]["status"] == "SUCCEEDED"
