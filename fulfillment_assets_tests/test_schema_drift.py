"""schema_contract judges the values the table holds, not that a variant column exists: a type
drift that stopped is reported as cleared, with when it was last seen, and blocks nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetCheckSeverity, DagsterInstance

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer
from fulfillment_assets_tests.helpers import TEST_API_KEY, materialize_all, query


def _contract(result):
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == "schema_contract"
    ]
    return evaluation


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_drift_that_stopped_is_cleared_and_no_longer_blocks(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    demo_api.configure(
        DemoApiOptions(300, api_key=TEST_API_KEY, customer_id_as_int_ids=frozenset({7, 8}))
    )
    drifted = materialize_all(instance, raise_on_error=False)
    contract = _contract(drifted)
    assert (contract.passed, contract.severity) == (False, AssetCheckSeverity.ERROR)
    assert "customer_id has 2 values of type bigint" in contract.description

    # The API sends those records as text again: the merge replaces them.
    demo_api.configure(DemoApiOptions(300, api_key=TEST_API_KEY))
    fixed = materialize_all(instance)

    contract = _contract(fixed)
    assert contract.passed, contract.description
    (cleared,) = contract.metadata["cleared_drifts"].value
    assert cleared.startswith("customer_id as bigint cleared (no values now; last seen 20")
    assert contract.metadata["deviations"].value == []
    # The variant column is still there, empty; the downstream tables were rebuilt.
    assert query(
        isolated_environment,
        "SELECT count(customer_id__v_bigint) FROM fulfillment.fulfillment_data",
    ) == [(0,)]
    materialized = {
        e.asset_key.path[-1] for e in fixed.get_asset_materialization_events() if e.asset_key
    }
    assert {"orders_validated", "orders_rejected", "orders_daily_summary"} <= materialized
