"""Destination settings: a wrong one fails before any API request, naming the setting; a DuckDB
file held by another process or a load past DuckDB's memory cap says so and what to do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetsDefinition, AssetSpec, DagsterInstance, SourceAsset, materialize

from fulfillment_assets import settings
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets_tests.helpers import RAW_ONLY, failure_message, materialize_all
from fulfillment_assets_tests.served.cli import subprocess_environment

# In a process of its own, as a code location loads: the `warehouse` resource's configured
# values as the UI's Resources tab shows them (the defaults of its config schema), then those
# `as_configured` gives once DESTINATION__DUCKDB__CREDENTIALS is set.
SHOWN_WAREHOUSE = """
import json, os, sys
from fulfillment_assets.definitions import defs
from fulfillment_assets.warehouse.resource import Warehouse

def shown(warehouse):
    schema = warehouse.get_resource_definition().config_schema
    return json.loads(schema.default_value_as_json_str)

print(json.dumps(shown(defs.resources["warehouse"])))
os.environ["DESTINATION__DUCKDB__CREDENTIALS"] = sys.argv[1]
print(json.dumps(shown(Warehouse.as_configured())))
"""


def test_an_unknown_destination_fails_before_any_request_naming_the_setting(
    demo_api: DemoApiServer, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULFILLMENT_DESTINATION", "duckdbb")

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert not result.success
    message = failure_message(result)
    assert "FULFILLMENT_DESTINATION='duckdbb' is not a dlt destination" in message, message
    assert demo_api.requests == []


def test_missing_destination_credentials_fail_before_any_request_naming_the_setting(
    demo_api: DemoApiServer, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULFILLMENT_DESTINATION", "postgres")

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert not result.success
    message = failure_message(result)
    assert "DESTINATION__POSTGRES__CREDENTIALS" in message, message
    assert "FULFILLMENT_DESTINATION" in message, message
    assert demo_api.requests == []


# Holds the DuckDB file open, as a notebook or the duckdb CLI would, until its stdin closes.
HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("open", flush=True)
sys.stdin.read()
"""


def test_a_duckdb_file_held_by_another_process_names_the_file_and_what_to_do(
    demo_api: DemoApiServer, instance: DagsterInstance
) -> None:
    settings.duckdb_path().parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.duckdb_path())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)
    finally:
        holder.communicate("", timeout=30)

    message = failure_message(result)
    assert f"the DuckDB file {settings.duckdb_path()} is locked by another process" in message
    assert f"(PID {holder.pid})" in message, message
    assert "DESTINATION__DUCKDB__CREDENTIALS" in message
    assert "internet connection" not in message


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_load_past_the_duckdb_memory_cap_names_the_setting(
    demo_api: DemoApiServer, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo_api.configure(records=20_000)
    monkeypatch.setenv("FULFILLMENT_DUCKDB_MEMORY_LIMIT", "2MB")

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    assert "FULFILLMENT_DUCKDB_MEMORY_LIMIT" in message, message
    assert "2MB" in message


def test_the_warehouse_resource_shows_its_settings_and_a_value_set_there_wins(
    demo_api: DemoApiServer, instance: DagsterInstance, tmp_path: Path
) -> None:
    from fulfillment_assets.definitions import defs

    # The fields the UI's Resources tab lists, each saying which setting it stands for.
    fields = Warehouse.model_fields
    assert "FULFILLMENT_DESTINATION" in (fields["destination"].description or "")
    assert "DESTINATION__DUCKDB__CREDENTIALS" in (fields["duckdb_path"].description or "")
    assert "FULFILLMENT_DUCKDB_MEMORY_LIMIT" in (fields["duckdb_memory_limit"].description or "")
    other = tmp_path / "elsewhere.duckdb"

    result = materialize(
        [a for a in defs.assets or [] if isinstance(a, AssetsDefinition | AssetSpec | SourceAsset)],
        resources={**(defs.resources or {}), "warehouse": Warehouse(duckdb_path=str(other))},
        instance=instance,
        selection=RAW_ONLY,
    )

    assert result.success
    assert Warehouse(duckdb_path=str(other)).query(
        "SELECT count(*) FROM fulfillment.fulfillment_data"
    ) == [(1234,)]
    assert not settings.duckdb_path().exists()


def test_the_loaded_warehouse_resource_shows_the_destination_and_the_duckdb_file(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = subprocess_environment({"FULFILLMENT_DATA_DIR": str(data_dir)})

    loaded = subprocess.run(
        [sys.executable, "-c", SHOWN_WAREHOUSE, str(tmp_path / "named.duckdb")],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert loaded.returncode == 0, loaded.stderr
    from_data_dir, from_credentials = map(json.loads, loaded.stdout.splitlines())
    assert from_data_dir == {
        "destination": "duckdb",
        "duckdb_path": str(data_dir / "warehouse.duckdb"),
        "duckdb_memory_limit": "128MB",
    }
    # dlt's credentials setting is shown by its name, never its value.
    assert from_credentials["duckdb_path"] == {"env": "DESTINATION__DUCKDB__CREDENTIALS"}
    assert "named.duckdb" not in loaded.stdout
