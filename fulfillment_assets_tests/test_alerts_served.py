"""Alerts end to end: `dg dev`'s daemon runs the alert sensor against the served project, which
posts to a real webhook receiver on loopback. A failed refresh, a blocking check failing with
ERROR and a stale raw table each produce exactly one alert, and recovery one more."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster_graphql import DagsterGraphQLClient

from fulfillment_assets_tests.helpers import TEST_API_KEY
from fulfillment_assets_tests.served.process import HOST
from fulfillment_assets_tests.served.server import ServedProject, served_project
from fulfillment_assets_tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow

UI = "http://ui.example:3000"
ALERT_SENSOR = "fulfillment_alert_sensor"
FRESHNESS_SENSOR = "fulfillment_freshness_sensor"
# Ticks that must pass without a second message before "exactly one" is believed.
QUIET_TICKS = 3


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def _serve(workdir: Path, hook: WebhookReceiver, **env: str):
    return served_project(
        workdir,
        api_key=TEST_API_KEY,
        records=500,
        env={
            "FULFILLMENT_ALERT_WEBHOOK_URL": hook.url,
            "FULFILLMENT_UI_URL": UI,
            "FULFILLMENT_ALERT_SENSOR_INTERVAL_SECONDS": "1",
            "FULFILLMENT_ALERT_RETRY_SECONDS": "0.1",
            **env,
        },
    )


def _refresh(project: ServedProject, expected: str) -> str:
    client = DagsterGraphQLClient(HOST, port_number=project.dagster.port, timeout=30)
    run_id = client.submit_job_execution("fulfillment_refresh")
    status = project.dagster.wait_for_run(run_id)
    assert status == expected, project.dagster.log_tail(lines=80)
    return run_id


def _quiet(project: ServedProject, hook: WebhookReceiver, count: int) -> None:
    """A few more alert ticks pass, and the receiver still has `count` messages."""
    project.dagster.wait_for_sensor_ticks(ALERT_SENSOR, QUIET_TICKS, after=time.time())
    assert len(hook.messages) == count, hook.messages


def test_failed_refresh_and_error_check_each_alert_once_and_recover_once(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    with _serve(tmp_path, hook) as project:
        # The freshness sensor's first load of the never-loaded table: a success, no message.
        project.dagster.wait_until_idle()
        _quiet(project, hook, 0)

        project.api.configure(fail_status=500)
        failed = _refresh(project, "FAILURE")
        (alert,) = hook.wait_for(1)
        # The cause first, once; then the step, its asset and the job as the user knows it.
        assert alert.startswith(
            f"[fulfillment] ALERT: the fulfillment API at {project.api.url} answered HTTP 500 on "
            "GET /v1/fulfillment"
        ), alert
        assert alert.count("HTTP 500") == 1, alert
        assert (
            "Failed: step `fulfillment_ingest` (`fulfillment/fulfillment_data`) of a "
            "`fulfillment_refresh` run, at "
        ) in alert
        assert f"Run: {UI}/runs/{failed}" in alert
        _quiet(project, hook, 1)

        project.api.configure(fail_status=None)
        passed = _refresh(project, "SUCCESS")
        recovered = hook.wait_for(2)[1]
        assert recovered.startswith("[fulfillment] RECOVERED: A refresh run succeeded again")
        assert recovered.endswith(f"{UI}/runs/{passed}")
        _quiet(project, hook, 2)

        # 20 % of customer ids null: past the 5 % ERROR threshold of a blocking check.
        project.api.configure(null_customer_id_fraction=0.2)
        failed = _refresh(project, "FAILURE")
        alert = hook.wait_for(3)[2]
        assert alert.startswith(
            "[fulfillment] ALERT: Check `customer_id_not_null` on `fulfillment/fulfillment_data` "
            "failed with ERROR: "
        )
        assert f"Run: {UI}/runs/{failed}" in alert
        # That run failed on the check alone: no failed-refresh alert on top.
        _quiet(project, hook, 3)

        project.api.configure(null_customer_id_fraction=0.0)
        _refresh(project, "SUCCESS")
        recovered = hook.wait_for(4)[3]
        assert recovered.startswith(
            "[fulfillment] RECOVERED: Check `customer_id_not_null` on "
            "`fulfillment/fulfillment_data` passes again"
        )
        _quiet(project, hook, 4)
        assert all(TEST_API_KEY not in json.dumps(body) for body in hook.bodies)


def test_stale_table_alerts_once_and_recovers_once(tmp_path: Path, hook: WebhookReceiver) -> None:
    # Dagster's shortest fail window; no automatic refresh within the test.
    env = {
        "FULFILLMENT_FRESHNESS_FAIL_SECONDS": "60",
        "FULFILLMENT_FRESHNESS_BACKOFF_SECONDS": "3600",
        "FULFILLMENT_FRESHNESS_SENSOR_INTERVAL_SECONDS": "5",
    }
    with _serve(tmp_path, hook, **env) as project:
        project.dagster.wait_until_idle()
        (alert,) = hook.wait_for(1, timeout=240)
        assert alert.startswith("[fulfillment] ALERT: `fulfillment/fulfillment_data` is stale: ")
        assert "ago; fails after 1 min. Asset: " in alert
        _quiet(project, hook, 1)

        # Every skipped tick of the freshness sensor says why in its log: fresh at first, then
        # stale but backing off after its request of the first load.
        ticks = project.dagster.sensor_ticks(FRESHNESS_SENSOR)
        skipped = [tick for tick in ticks if tick["status"] == "SKIPPED"]
        assert skipped, ticks
        for tick in skipped:
            log = [event["message"] for event in tick["logEvents"]["events"]]
            assert log == [f"no refresh requested: {tick['skipReason']}"], tick
        assert any("backing off" in tick["skipReason"] for tick in skipped), skipped

        passed = _refresh(project, "SUCCESS")
        messages = hook.wait_for(2)
        assert messages[1].startswith(
            "[fulfillment] RECOVERED: `fulfillment/fulfillment_data` is fresh again"
        )
        assert messages[1].endswith(f"{UI}/runs/{passed}")
        assert len(hook.messages) == 2
