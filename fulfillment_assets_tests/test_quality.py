"""Checks on the raw table and the validated / rejected / summary tables, on data with known
faults served by the demo API, on DuckDB and on PostgreSQL. The demo's statuses are configured as
the accepted ones (FULFILLMENT_ACCEPTED_STATUSES) where a test counts unknown statuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetCheckSeverity, DagsterInstance

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer, make_record, record_ids_with
from fulfillment_assets.demo_api.data import RecordKind
from fulfillment_assets.settings import ORDER_STATUSES
from fulfillment_assets_tests.helpers import CHECK_NAMES, TEST_API_KEY, materialize_all, query

pytestmark = pytest.mark.every_destination

# Known faults: 2% null and 5 missing customer_id, 1% null and 3 missing order_status, 4 unknown
# statuses, 3 ids served twice.
FAULTY = DemoApiOptions(
    records=1000,
    api_key=TEST_API_KEY,
    missing_customer_id_ids=frozenset({11, 22, 33, 44, 55}),
    missing_order_status_ids=frozenset({66, 77, 88}),
    unknown_status_ids=frozenset({101, 202, 303, 404}),
    duplicate_ids=frozenset({500, 600, 700}),
)
CLEAN = DemoApiOptions(
    records=1000, api_key=TEST_API_KEY, null_customer_id_fraction=0, null_order_status_fraction=0
)


def _evaluations(result) -> dict:
    return {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}


def _ids(kind: RecordKind, options: DemoApiOptions) -> set[int]:
    return record_ids_with(kind, options)


@pytest.fixture
def demo_statuses_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULFILLMENT_ACCEPTED_STATUSES", ",".join(ORDER_STATUSES))


def test_clean_data_passes_every_check(demo_api: DemoApiServer, instance: DagsterInstance) -> None:
    demo_api.configure(CLEAN)

    result = materialize_all(instance)

    evaluations = _evaluations(result)
    assert set(evaluations) == CHECK_NAMES
    assert all(e.passed for e in evaluations.values()), {
        name: e.description for name, e in evaluations.items() if not e.passed
    }
    assert evaluations["customer_id_not_null"].metadata["rows_checked"].value == 1000


@pytest.mark.usefixtures("demo_statuses_accepted")
def test_each_check_reports_the_exact_counts_of_known_faults(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    demo_api.configure(FAULTY)

    result = materialize_all(instance)

    evaluations = _evaluations(result)
    null_customer = _ids("null_customer_id", FAULTY) | _ids("missing_customer_id", FAULTY)
    customer = evaluations["customer_id_not_null"]
    assert customer.metadata["offending_rows"].value == len(null_customer) == 25
    assert customer.metadata["offending_fraction"].value == pytest.approx(0.025)
    assert customer.metadata["sample_offending_ids"].value == sorted(null_customer)[:20]
    assert (customer.passed, customer.severity) == (False, AssetCheckSeverity.WARN)

    null_status = _ids("null_order_status", FAULTY) | _ids("missing_order_status", FAULTY)
    status = evaluations["order_status_not_null"]
    assert status.metadata["offending_rows"].value == len(null_status) == 13
    assert (status.passed, status.severity) == (False, AssetCheckSeverity.WARN)

    accepted = evaluations["order_status_accepted"]
    assert accepted.metadata["offending_rows"].value == 4
    assert accepted.metadata["sample_offending_ids"].value == [101, 202, 303, 404]
    assert (accepted.passed, accepted.severity) == (False, AssetCheckSeverity.WARN)

    unique = evaluations["id_unique_and_not_null"]
    assert unique.metadata["duplicate_rows"].value == 0  # merge kept one row per id
    assert unique.metadata["duplicate_records_received_in_latest_load"].value == 3
    assert (unique.passed, unique.severity) == (False, AssetCheckSeverity.WARN)

    assert evaluations["schema_contract"].passed
    # WARN does not block: the downstream tables were built.
    assert result.success
    assert query(isolated_environment, "SELECT count(*) FROM fulfillment.orders_validated")


def test_null_fraction_above_the_error_threshold_fails_and_blocks_downstream(
    demo_api: DemoApiServer, instance: DagsterInstance
) -> None:
    options = demo_api.configure(FAULTY, null_customer_id_fraction=0.08)

    result = materialize_all(instance, raise_on_error=False)

    customer = _evaluations(result)["customer_id_not_null"]
    assert (customer.passed, customer.severity) == (False, AssetCheckSeverity.ERROR)
    expected = _ids("null_customer_id", options) | _ids("missing_customer_id", options)
    assert customer.metadata["offending_rows"].value == len(expected) > 50
    materialized = {
        e.asset_key.path[-1] for e in result.get_asset_materialization_events() if e.asset_key
    }
    assert materialized == {"fulfillment_data"}


def test_a_type_drift_fails_the_schema_contract_and_blocks_downstream(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    drift = DemoApiOptions(
        CLEAN.records, api_key=TEST_API_KEY, customer_id_as_int_ids=frozenset({7, 8, 9})
    )
    demo_api.configure(drift)

    result = materialize_all(instance, raise_on_error=False)

    contract = _evaluations(result)["schema_contract"]
    assert (contract.passed, contract.severity) == (False, AssetCheckSeverity.ERROR)
    deviations = contract.metadata["deviations"].value
    assert any("customer_id has 3 values of type bigint" in d for d in deviations), deviations
    assert contract.metadata["sample_offending_ids"].value == [7, 8, 9]
    # The drifted values are kept, in dlt's variant column, not lost.
    assert query(
        isolated_environment,
        "SELECT id, customer_id__v_bigint FROM fulfillment.fulfillment_data "
        "WHERE customer_id__v_bigint IS NOT NULL ORDER BY id",
    ) == [(i, int(make_record(i)["customer_id"][1:])) for i in (7, 8, 9)]
    materialized = {
        e.asset_key.path[-1] for e in result.get_asset_materialization_events() if e.asset_key
    }
    assert "orders_validated" not in materialized


@pytest.mark.usefixtures("demo_statuses_accepted")
def test_validated_plus_rejected_equals_raw_with_the_right_reasons(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    demo_api.configure(FAULTY)

    result = materialize_all(instance)

    assert _evaluations(result)["validated_plus_rejected_equals_raw"].passed
    ((raw,),) = query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data")
    ((validated,),) = query(
        isolated_environment, "SELECT count(*) FROM fulfillment.orders_validated"
    )
    reasons = dict(
        query(
            isolated_environment,
            "SELECT id, rejection_reasons FROM fulfillment.orders_rejected ORDER BY id",
        )
    )
    assert raw == 1000 and validated + len(reasons) == raw
    for record_id in _ids("missing_customer_id", FAULTY) | _ids("null_customer_id", FAULTY):
        assert "customer_id is null" in reasons[record_id]
    for record_id in _ids("missing_order_status", FAULTY) | _ids("null_order_status", FAULTY):
        assert "order_status is null" in reasons[record_id]
    for record_id in _ids("unknown_status", FAULTY):
        assert reasons[record_id] == "order_status is not an accepted status"
    rejected_ids = set(reasons)
    assert rejected_ids == (
        _ids("missing_customer_id", FAULTY)
        | _ids("null_customer_id", FAULTY)
        | _ids("missing_order_status", FAULTY)
        | _ids("null_order_status", FAULTY)
        | _ids("unknown_status", FAULTY)
    )
    # A record both null in customer_id and in order_status carries both reasons.
    both = (_ids("null_customer_id", FAULTY) | _ids("missing_customer_id", FAULTY)) & (
        _ids("null_order_status", FAULTY) | _ids("missing_order_status", FAULTY)
    )
    for record_id in both:
        assert reasons[record_id] == "customer_id is null; order_status is null"

    summary = query(
        isolated_environment,
        "SELECT quality, sum(orders) FROM fulfillment.orders_daily_summary GROUP BY 1 ORDER BY 1",
    )
    assert summary == [("rejected", len(reasons)), ("validated", validated)]


def test_accepted_statuses_are_configurable(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    isolated_environment: Path,
) -> None:
    demo_api.configure(CLEAN)
    monkeypatch.setenv("FULFILLMENT_ACCEPTED_STATUSES", "pending,processing,shipped")

    result = materialize_all(instance, raise_on_error=False)

    accepted = _evaluations(result)["order_status_accepted"]
    ((others,),) = query(
        isolated_environment,
        "SELECT count(*) FROM fulfillment.fulfillment_data "
        "WHERE order_status NOT IN ('pending', 'processing', 'shipped')",
    )
    assert others > 0
    assert accepted.metadata["offending_rows"].value == others
    assert (accepted.passed, accepted.severity) == (False, AssetCheckSeverity.ERROR)
