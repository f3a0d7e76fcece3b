"""A new API field whose name normalizes onto an existing column, or onto a column of the
project's or dlt's own (`_deleted_at`, `_dlt_load_id`, the models' `rejection_reasons`), or whose
name is empty, is loaded under a distinct column and reported by a WARN check naming both fields;
the run does not fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetCheckEvaluation, AssetCheckSeverity, DagsterEventType, DagsterInstance

from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets_tests.fake_api import RecordsApi, serve_fake_api
from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    api_rows,
    materialize_all,
    query,
    table_snapshot,
)
from fulfillment_assets_tests.served.cli import materialize_everything_from_the_cli


def test_colliding_field_names_load_under_distinct_columns_and_warn(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    demo_api.configure(
        records=300, extra_fields={"customerId": "X-1", "Order Status": "odd", "ID": 7}
    )

    result = materialize_all(instance)

    assert result.success
    assert query(
        isolated_environment,
        "SELECT count(*), min(customer_id__collision_1), min(order_status__collision_1), "
        "min(id__collision_1) FROM fulfillment.fulfillment_data",
    ) == [(300, "X-1", "odd", 7)]
    demo_api.configure(records=300)  # the contract columns hold what they always held
    assert table_snapshot(isolated_environment) == api_rows(demo_api)
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "field_names_distinct"
    ]
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    description = evaluation.description or ""
    for phrase in (
        "`customer_id__collision_1` holds API field `customerId`",
        "beside `customer_id`",
        "API field `Order Status`",
        "API field `ID`",
    ):
        assert phrase in description, description


class OwnColumnsApi(RecordsApi):
    """300 orders with fields named after the project's and dlt's own columns (`_deleted_at` as
    an ISO time on a third of them, `_dlt_load_id`, `_dlt_id`, the models' `rejection_reasons`),
    a field with an empty name and three that normalize onto one column (`Note`, `note`,
    `NOTE`); every 50th order has no customer (6 rejected: 2 %, a WARN, the models built)."""

    def __init__(self, records: int = 300) -> None:
        super().__init__(
            [
                {
                    "id": n,
                    "customer_id": None if n % 50 == 0 else f"cus_{n % 13}",
                    "order_status": "shipped",
                    "updated_at": f"2026-11-01T10:{n // 60:02d}:{n % 60:02d}Z",
                    "_deleted_at": "2026-10-01T00:00:00Z" if n % 3 == 0 else None,
                    "_dlt_load_id": f"api-{n}",
                    "_dlt_id": f"api-row-{n}",
                    "rejection_reasons": f"api reasons {n}",
                    "": f"blank-{n}",
                    "Note": "upper first",
                    "note": "lower",
                    "NOTE": "all caps",
                }
                for n in range(1, records + 1)
            ]
        )
        self.asked: list[dict[str, str]] = []  # each request's query params, in order

    def page(self, offset: int, limit: int, params: dict[str, str]) -> dict[str, Any]:
        self.asked.append(params)
        return super().page(offset, limit, params)


@pytest.fixture
def own_columns(monkeypatch: pytest.MonkeyPatch) -> Iterator[OwnColumnsApi]:
    api = OwnColumnsApi()
    with serve_fake_api(api, monkeypatch):
        yield api


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.every_destination
def test_fields_named_after_the_projects_columns_keep_their_values_apart(
    own_columns: OwnColumnsApi, instance: DagsterInstance, isolated_environment: Path
) -> None:
    for _ in range(2):  # run 2 is a full walk: it marks deletes by the project's `_deleted_at`
        result = materialize_all(instance)
        assert result.success

    counts = query(
        isolated_environment,
        "SELECT count(*), count(_deleted_at), count(_deleted_at__collision_1), "
        "min(_dlt_load_id__collision_1), count(DISTINCT _dlt_load_id), "
        "min(empty_field_name__collision_1), count(DISTINCT _dlt_id__collision_1), "
        "min(rejection_reasons__collision_1) FROM fulfillment.fulfillment_data",
    )
    # No order marked deleted by the API's field; the API's values kept under their own columns.
    assert counts == [(300, 0, 100, "api-1", 1, "blank-1", 300, "api reasons 1")]
    assert query(
        isolated_environment,
        "SELECT count(*) FROM fulfillment.fulfillment_data WHERE _dlt_load_id IN "
        "(SELECT load_id FROM fulfillment._dlt_loads)",
    ) == [(300,)]
    # The models: the API's fields beside the project's `rejection_reasons`, each with its own.
    assert query(
        isolated_environment,
        "SELECT count(*), min(_dlt_load_id__collision_1), min(_dlt_id__collision_1), "
        "min(rejection_reasons__collision_1) FROM fulfillment.orders_validated",
    ) == [(294, "api-1", "api-row-1", "api reasons 1")]
    assert query(
        isolated_environment,
        "SELECT id, rejection_reasons, rejection_reasons__collision_1 "
        "FROM fulfillment.orders_rejected ORDER BY id",
    ) == [(n, "customer_id is null", f"api reasons {n}") for n in range(50, 301, 50)]
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "field_names_distinct"
    ]
    assert evaluation.severity == AssetCheckSeverity.WARN
    description = evaluation.description or ""
    for phrase in (
        "`_deleted_at__collision_1` holds API field `_deleted_at`, named after the column "
        "`_deleted_at` of the project's or dlt's own",
        "`_dlt_load_id__collision_1` holds API field `_dlt_load_id`",
        "`_dlt_id__collision_1` holds API field `_dlt_id`",
        "`rejection_reasons__collision_1` holds API field `rejection_reasons`, named after the "
        "column `rejection_reasons` of the project's or dlt's own",
        "`empty_field_name__collision_1` holds API field '', whose name is empty",
    ):
        assert phrase in description, description


def test_colliding_field_names_load_with_incremental_sync_on(
    own_columns: OwnColumnsApi,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM", "updated_since")
    monkeypatch.setenv("SOURCES__FULFILLMENT__LOOKBACK_SECONDS", "60")

    assert materialize_all(instance, selection=RAW_ONLY).success  # the first walk is full
    assert not any("updated_since" in params for params in own_columns.asked)
    own_columns.asked.clear()
    assert materialize_all(instance, selection=RAW_ONLY).success
    # The second walk is incremental: from the newest `updated_at` loaded (10:05) less 60 s.
    assert {params.get("updated_since") for params in own_columns.asked} == {"2026-11-01T10:04:00Z"}

    assert query(
        isolated_environment,
        "SELECT count(*), min(note), min(note__collision_1), min(note__collision_2), "
        "count(_deleted_at) FROM fulfillment.fulfillment_data",
        # `note` keeps its column; the others in sorted order (`NOTE` < `Note`).
    ) == [(300, "lower", "all caps", "upper first", 0)]


@pytest.mark.slow  # two command-line runs
def test_an_api_load_id_field_stays_apart_when_run_outside_the_project_directory(
    own_columns: OwnColumnsApi, isolated_environment: Path, dagster_home: Path, tmp_path: Path
) -> None:
    # dlt reads `.dlt/config.toml` (add_dlt_load_id) from the working directory: none here, so
    # the source alone gives every row its load id, and the API's `_dlt_load_id` must not be it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for _ in range(2):  # run 2 is a full walk: it marks deletes by load id
        materialize_everything_from_the_cli(dagster_home, cwd=elsewhere)

    # Every row's load id is a real load of the project's; the API's values in their own column.
    assert query(
        isolated_environment,
        "SELECT count(*), count(DISTINCT _dlt_load_id), count(_deleted_at), "
        "count(DISTINCT _dlt_load_id__collision_1), min(_dlt_load_id__collision_1), "
        "count(CASE WHEN _dlt_load_id IN (SELECT load_id FROM fulfillment._dlt_loads) THEN 1 END) "
        "FROM fulfillment.fulfillment_data",
    ) == [(300, 1, 0, 300, "api-1", 300)]
    # The newest-version table has every id (its rows are found by load id).
    assert query(
        isolated_environment,
        "SELECT count(DISTINCT version_id) FROM fulfillment.fulfillment_data_versions",
    ) == [(300,)]
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        latest = instance.get_run_records(limit=1)[0].dagster_run.run_id
        evaluations = {
            data.check_name: data
            for record in instance.all_logs(latest, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
            if record.dagster_event is not None
            and isinstance(data := record.dagster_event.event_specific_data, AssetCheckEvaluation)
        }
    # No id "sent twice" (a NULL or shared load id would make the latest load's rows look so).
    assert evaluations["id_unique_and_not_null"].passed


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_many_colliding_fields_are_listed_bounded_with_their_count(
    monkeypatch: pytest.MonkeyPatch, instance: DagsterInstance
) -> None:
    # 60 pairs of fields normalizing onto one column each (`F0` and `f0`, ...).
    twins = {f"{letter}{n}": n for n in range(60) for letter in "Ff"}
    api = RecordsApi([{"id": n, "customer_id": "c", "order_status": "s", **twins} for n in (1, 2)])
    with serve_fake_api(api, monkeypatch):
        result = materialize_all(instance)

    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "field_names_distinct"
    ]
    description = evaluation.description or ""
    # 50 named (display.LISTED_VALUES), the other 10 counted.
    assert description.count("holds API field") == 50 and description.endswith("; and 10 more")
    assert evaluation.metadata["collision_columns_count"].value == 60
    listed = evaluation.metadata["collision_columns"].value
    assert isinstance(listed, list) and len(listed) == 50
