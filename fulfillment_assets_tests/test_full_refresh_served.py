"""Full refresh from the UI (issue 13): the raw asset launched through the webserver's GraphQL API
(as the Launchpad does) with run config `full_refresh: true`, against `dg dev` in incremental
mode: the run walks everything without the cursor, marks the dropped orders, sets a new cursor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fulfillment_assets_tests.helpers import TEST_API_KEY, query
from fulfillment_assets_tests.served.server import ServedProject, served_project

pytestmark = pytest.mark.slow

RAW_PATH = ["fulfillment", "fulfillment_data"]
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
LOCATION = """{ repositoriesOrError { ... on RepositoryConnection {
  nodes { name location { name } } } } }"""
LATEST_METADATA = """
query Latest($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) { ... on Asset { assetMaterializations(limit: 1) {
    runId
    metadataEntries {
      label
      ... on IntMetadataEntry { intValue }
      ... on TextMetadataEntry { text }
    } } } }
}"""


def launch_raw(project: ServedProject, run_config: dict[str, Any]) -> str:
    """Materializes the raw asset as the UI's Launchpad does; the run's id once it succeeded."""
    (repository,) = project.dagster.graphql(LOCATION)["repositoriesOrError"]["nodes"]
    params = {
        "selector": {
            "repositoryLocationName": repository["location"]["name"],
            "repositoryName": repository["name"],
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": RAW_PATH}],
            "assetCheckSelection": [],
        },
        "runConfigData": run_config,
        "mode": "default",
    }
    launched = project.dagster.graphql(LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = project.dagster.wait_for_run(run_id, timeout=240)
    assert status == "SUCCESS", project.dagster.log_tail(lines=80)
    return run_id


def latest_metadata(project: ServedProject, run_id: str) -> dict[str, Any]:
    asset = project.dagster.graphql(LATEST_METADATA, {"key": {"path": RAW_PATH}})["assetOrError"]
    (materialization,) = asset["assetMaterializations"]
    assert materialization["runId"] == run_id
    return {
        entry["label"]: entry.get("intValue", entry.get("text"))
        for entry in materialization["metadataEntries"]
    }


def test_a_full_refresh_launched_with_run_config_walks_everything_and_marks_deletes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM": "updated_since"}
    with served_project(tmp_path / "served", api_key=TEST_API_KEY, records=500, env=env) as p:
        # The freshness sensor may launch a refresh when the daemon starts: let it finish.
        p.dagster.wait_until_idle()
        first = launch_raw(p, {})
        p.dagster.wait_until_idle()
        p.api.configure(removed_ids={3, 77}, changed_ids={5})
        p.api.clear_requests()
        incremental = launch_raw(p, {})
        metadata = latest_metadata(p, incremental)
        assert metadata["sync_mode"] == "incremental", (first, metadata)
        assert all(r.updated_since for r in p.api.requests)
        assert metadata["rows_marked_deleted"] == 0

        p.dagster.wait_until_idle()
        p.api.clear_requests()
        config = {"ops": {"fulfillment_ingest": {"config": {"full_refresh": True}}}}
        refresh = launch_raw(p, config)
        metadata = latest_metadata(p, refresh)
        assert metadata["sync_mode"] == "full" and metadata["cursor_sent"] == "none"
        assert metadata["records_received"] == 498
        assert metadata["rows_marked_deleted"] == 2
        assert {r.updated_since for r in p.api.requests} == {None}
        assert metadata["new_cursor"] != "none"

        p.dagster.wait_until_idle()
        monkeypatch.setenv("FULFILLMENT_DATA_DIR", str(p.dagster.data_dir))
        marked = query(
            p.dagster.data_dir,
            "SELECT id FROM fulfillment.fulfillment_data WHERE _deleted_at IS NOT NULL ORDER BY id",
        )
        assert marked == [(3,), (77,)]
