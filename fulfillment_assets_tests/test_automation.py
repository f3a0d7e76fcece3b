"""Freshness and the sensor acting on it: its decisions at any clock, and the sensor evaluated
against a real test instance with real runs (public Dagster APIs only)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    SkipReason,
    build_sensor_context,
)

from fulfillment_assets import settings
from fulfillment_assets.automation.durations import human_duration, parse_iso_time
from fulfillment_assets.automation.freshness import (
    REFRESH_JOB_NAME,
    decide,
    fulfillment_freshness_sensor,
    fulfillment_refresh_schedule,
)
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.definitions import defs
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets_tests.helpers import RAW_ONLY, materialize_all

NOW = 1_800_000_000.0
DAY = timedelta(hours=24)
BACKOFF = timedelta(minutes=30)


def _decide(**overrides):
    arguments: dict[str, Any] = dict(
        now=NOW, loaded_at=None, last_request=None, in_flight=[], fail_window=DAY, backoff=BACKOFF
    )
    return decide(**{**arguments, **overrides})


def _evaluate(instance: DagsterInstance, cursor: str | None = None):
    context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return fulfillment_freshness_sensor(context), context.cursor


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45 s"), (125, "2 min"), (7500, "2 h 5 min"), (86400, "24 h"), (200000, "2 d 7 h")],
)
def test_durations_read_in_human_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_decisions_in_human_units_at_any_clock() -> None:
    never = _decide()
    assert never.request and never.reason == "the raw table has never been loaded"

    fresh = _decide(loaded_at=NOW - 7500)
    assert not fresh.request
    assert fresh.reason == "fresh: loaded 2 h 5 min ago; fails after 24 h"

    stale = _decide(loaded_at=NOW - 90000)
    assert stale.request and stale.reason == "stale: loaded 25 h ago; fails after 24 h"

    backing_off = _decide(loaded_at=NOW - 90000, last_request=NOW - 300)
    assert not backing_off.request
    assert "requested 5 min ago; backing off for 30 min" in backing_off.reason
    # Past the backoff it asks again.
    assert _decide(loaded_at=NOW - 90000, last_request=NOW - 1900).request

    run = DagsterRun(job_name=REFRESH_JOB_NAME, run_id="r1", status=DagsterRunStatus.STARTED)
    in_flight = _decide(loaded_at=NOW - 90000, in_flight=[run, run])
    assert not in_flight.request
    assert in_flight.reason == "a refresh is in flight: run r1 (STARTED) and 1 more"


def test_requests_the_first_load_when_never_materialized_and_says_why(
    instance: DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    before = time.time()
    result, cursor = _evaluate(instance)

    assert isinstance(result, RunRequest)
    assert result.tags["fulfillment/reason"] == "the raw table has never been loaded"
    # The cursor reads as JSON with an ISO time.
    state = json.loads(cursor)
    assert parse_iso_time(state["last_request"]) >= int(before)
    assert state["last_request_reason"] == "the raw table has never been loaded"
    assert state["state"] == "the raw table has never been loaded"
    assert "requesting a refresh: the raw table has never been loaded" in capsys.readouterr().err

    # Right after a request it backs off, and its log says so.
    again, _ = _evaluate(instance, cursor)
    assert isinstance(again, SkipReason) and "backing off for 30 min" in (again.skip_message or "")
    assert f"no refresh requested: {again.skip_message}" in capsys.readouterr().err


def test_the_cursor_says_what_the_latest_tick_found_after_a_load(
    demo_api: DemoApiServer, instance: DagsterInstance
) -> None:
    requested, first_cursor = _evaluate(instance)
    assert isinstance(requested, RunRequest)
    assert json.loads(first_cursor)["state"] == "the raw table has never been loaded"

    materialize_all(instance, selection=RAW_ONLY)
    skipped, cursor = _evaluate(instance, first_cursor)

    assert isinstance(skipped, SkipReason)
    state = json.loads(cursor)
    # What the tick found now, as its skip reason says it; the request is history, named so.
    assert state["state"] == skipped.skip_message
    assert state["state"].startswith("fresh: loaded ")
    assert state["last_request_reason"] == "the raw table has never been loaded"
    assert parse_iso_time(state["checked_at"]) >= parse_iso_time(state["last_request"])
    # The backoff still counts from that request.
    assert state["last_request"] == json.loads(first_cursor)["last_request"]


def test_skips_while_fresh_and_requests_once_past_a_short_fail_window(
    demo_api: DemoApiServer, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    materialize_all(instance, selection=RAW_ONLY)

    result, _ = _evaluate(instance)
    assert isinstance(result, SkipReason)
    assert (result.skip_message or "").startswith("fresh: loaded ")
    assert (result.skip_message or "").endswith(" ago; fails after 24 h")

    # An operator's window (in seconds); the load above is older than a zero-second one.
    monkeypatch.setenv("FULFILLMENT_FRESHNESS_FAIL_SECONDS", "0")
    result, _ = _evaluate(instance)
    assert isinstance(result, RunRequest)
    assert result.tags["fulfillment/reason"].startswith("stale: loaded ")


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_requests_nothing_while_a_run_loading_the_raw_table_is_in_flight(
    demo_api: DemoApiServer, instance: DagsterInstance
) -> None:
    # The first page hangs, so the run stays in flight while the sensor looks.
    demo_api.configure(hang_offset=0, hang_seconds=10)
    job = defs.resolve_job_def(REFRESH_JOB_NAME)
    run = threading.Thread(
        target=job.execute_in_process,
        kwargs={"instance": instance, "asset_selection": [RAW_ASSET_KEY], "raise_on_error": False},
    )
    run.start()
    try:
        deadline = time.monotonic() + 60
        result, _ = _evaluate(instance)
        while "in flight" not in getattr(result, "skip_message", "") and run.is_alive():
            assert time.monotonic() < deadline, result
            time.sleep(0.2)
            result, _ = _evaluate(instance)
        assert isinstance(result, SkipReason)
        assert (result.skip_message or "").startswith("a refresh is in flight: run ")
    finally:
        run.join(timeout=120)


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
        # dagster exports no name for its time-window policy class to narrow to.
        assert policy.fail_window.to_timedelta() == settings.FRESHNESS_FAIL_WINDOW  # type: ignore[attr-defined]
    assert fulfillment_freshness_sensor.default_status == DefaultSensorStatus.RUNNING
    assert fulfillment_refresh_schedule.default_status == DefaultScheduleStatus.STOPPED
