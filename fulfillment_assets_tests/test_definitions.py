"""The code location as Dagster loads it: keys, lineage, groups, kinds; no secret needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey

from fulfillment_assets import settings
from fulfillment_assets.definitions import defs
from fulfillment_assets_tests.helpers import CHECK_NAMES

API = AssetKey(["fulfillment", "fulfillment_api"])
RAW = AssetKey(["fulfillment", "fulfillment_data"])


# Settings each run checks and refuses by name: wrong, they fail the run, never the load of the
# code location (which would take the UI's asset pages with it).
BAD_RUN_SETTINGS = {
    f"SOURCES__FULFILLMENT__{name}": value
    for name, value in {
        "PAGE_LIMIT": "0",
        "PAGE_CONCURRENCY": "0",
        "MAX_WALK_PASSES": "0",
        "TAIL_CHASE_PAGES": "-1",
        "CHUNK_PAGES": "0",
        "CHUNK_SECONDS": "0",
        "ID_TYPE": "uuid",
        "API_TIMEZONE": "Mars/Olympus_Mons",
        "ENDPOINT": '{"paginator": {"type": "pages"}}',
    }.items()
}


@pytest.mark.parametrize("settings_env", [{}, BAD_RUN_SETTINGS], ids=["no secret", "bad settings"])
def test_the_code_location_loads_without_any_secret(
    tmp_path: Path, settings_env: dict[str, str]
) -> None:
    # A fresh process, in a folder with no .dlt/secrets.toml and no key in the environment.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SOURCES__", "DESTINATION__"))
    }
    env["FULFILLMENT_DATA_DIR"] = str(tmp_path / "data")
    env.update(settings_env)
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "from fulfillment_assets.definitions import defs; "
            "print(sorted(k.to_user_string() for k in defs.resolve_all_asset_keys()))",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "fulfillment/fulfillment_data" in loaded.stdout


def test_asset_keys_lineage_group_and_kinds() -> None:
    graph = defs.resolve_asset_graph()

    assert {API, RAW} <= set(graph.get_all_asset_keys())
    assert graph.get(RAW).parent_keys == {API}
    raw_spec = graph.get(RAW)
    assert raw_spec.group_name == settings.ASSET_GROUP
    assert {"dlt", "duckdb"} <= set(raw_spec.kinds)
    assert raw_spec.description
    api_spec = graph.get(API)
    assert not api_spec.is_materializable  # the API is where lineage starts, not a table
    assert "api" in api_spec.kinds


def test_raw_table_declares_its_column_schema() -> None:
    raw = defs.resolve_asset_graph().get(RAW)
    schema = raw.metadata["dagster/column_schema"]
    columns = {column.name: column for column in schema.columns}

    assert columns["id"].type == "bigint"
    assert columns["customer_id"].type == "text"
    assert columns["order_status"].type == "text"
    assert all(column.description for column in columns.values())


def test_lineage_from_the_api_through_raw_to_every_model() -> None:
    graph = defs.resolve_asset_graph()

    def parents(name: str) -> set[str]:
        return {key.path[-1] for key in graph.get(AssetKey(["fulfillment", name])).parent_keys}

    assert parents("fulfillment_data") == {"fulfillment_api"}
    assert parents("orders_validated") == {"fulfillment_data"}
    assert parents("orders_rejected") == {"fulfillment_data"}
    assert parents("orders_daily_summary") == {"orders_validated", "orders_rejected"}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.kinds, key


def test_checks_guarding_downstream_are_blocking() -> None:
    graph = defs.resolve_asset_graph()
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}

    assert set(checks) == CHECK_NAMES
    assert all(spec.blocking for spec in checks.values())
    assert all(spec.description for spec in checks.values())


def test_the_full_refresh_job_rebuilds_every_table_with_its_config_filled_in() -> None:
    refresh = defs.resolve_job_def("fulfillment_refresh")
    full = defs.resolve_job_def("fulfillment_full_refresh")
    # The same assets and checks as the refresh: the raw table and every table built on it.
    assert full.asset_layer.selected_asset_keys == refresh.asset_layer.selected_asset_keys
    assert {key.path[-1] for key in full.asset_layer.selected_asset_keys} == {
        "fulfillment_data",
        "orders_validated",
        "orders_rejected",
        "orders_daily_summary",
    }
    # What its Launchpad shows: a full refresh, nothing to type.
    assert full.run_config == {"ops": {"fulfillment_ingest": {"config": {"full_refresh": True}}}}
    assert refresh.run_config is None
