"""A new API field whose name normalizes onto an existing column is loaded under a distinct
column and reported by a WARN check naming both fields; the run does not fail."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetCheckSeverity, DagsterInstance

from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets_tests.conftest import materialize_all, query, table_snapshot
from fulfillment_assets_tests.test_ingestion import _api_rows


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
    assert table_snapshot(isolated_environment) == _api_rows(demo_api)
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
