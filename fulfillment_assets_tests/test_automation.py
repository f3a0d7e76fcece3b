"""Freshness and the sensor acting on it, evaluated against a real test instance."""

from __future__ import annotations

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    SkipReason,
    build_sensor_context,
)
from dagster._core.test_utils import create_run_for_test, freeze_time
from dagster._time import get_current_timestamp

from fulfillment_assets import settings
from fulfillment_assets.automation import (
    REFRESH_JOB_NAME,
    fulfillment_freshness_sensor,
    fulfillment_refresh_schedule,
)
from fulfillment_assets.definitions import defs
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets_tests.conftest import materialize_all

STALE = settings.FRESHNESS_FAIL_WINDOW.total_seconds() + 60


def _evaluate(instance: DagsterInstance, cursor: str | None = None):
    context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return fulfillment_freshness_sensor(context), context.cursor


def test_requests_the_first_load_when_never_materialized(instance: DagsterInstance) -> None:
    result, cursor = _evaluate(instance)

    assert isinstance(result, RunRequest)
    assert result.tags["fulfillment/reason"] == "the raw table has never been loaded"
    assert cursor is not None


def test_requests_nothing_while_fresh_and_a_refresh_once_stale(
    demo_api: DemoApiServer, instance: DagsterInstance
) -> None:
    materialize_all(instance)

    result, _ = _evaluate(instance)
    assert isinstance(result, SkipReason) and result.skip_message.startswith("fresh")

    with freeze_time(get_current_timestamp() + STALE):
        result, cursor = _evaluate(instance)
        assert isinstance(result, RunRequest)
        assert "past its" in result.tags["fulfillment/reason"]
        # Right after a request it backs off rather than piling up runs.
        again, _ = _evaluate(instance, cursor)
        assert isinstance(again, SkipReason) and "backing off" in again.skip_message


def test_requests_nothing_while_a_refresh_is_in_flight(instance: DagsterInstance) -> None:
    create_run_for_test(instance, job_name=REFRESH_JOB_NAME, status=DagsterRunStatus.STARTED)

    result, _ = _evaluate(instance)

    assert isinstance(result, SkipReason) and "in flight" in result.skip_message


def test_the_requested_run_refreshes_raw_and_everything_downstream() -> None:
    job = defs.resolve_job_def(REFRESH_JOB_NAME)
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}

    assert keys == {
        "fulfillment/fulfillment_data",
        "fulfillment/orders_validated",
        "fulfillment/orders_rejected",
        "fulfillment/orders_daily_summary",
    }
    assert fulfillment_freshness_sensor.job_name == REFRESH_JOB_NAME


def test_freshness_policy_on_raw_and_downstream_and_default_statuses() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        policy = graph.get(key).freshness_policy
        assert policy is not None, key
        assert policy.fail_window.to_timedelta() == settings.FRESHNESS_FAIL_WINDOW
    assert fulfillment_freshness_sensor.default_status == DefaultSensorStatus.RUNNING
    assert fulfillment_refresh_schedule.default_status == DefaultScheduleStatus.STOPPED


def test_requests_nothing_while_a_ui_run_of_the_raw_table_is_in_flight(
    instance: DagsterInstance,
) -> None:
    from fulfillment_assets.assets import RAW_ASSET_KEY

    create_run_for_test(
        instance,
        job_name="__ASSET_JOB",
        asset_selection=frozenset({RAW_ASSET_KEY}),
        status=DagsterRunStatus.STARTING,
    )

    result, _ = _evaluate(instance)

    assert isinstance(result, SkipReason) and "in flight" in result.skip_message
