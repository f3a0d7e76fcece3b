"""Alerts without Dagster+: the alert sensor evaluated against a real test instance after real
runs, posting to a real webhook receiver on loopback. (`test_alerts_served.py` runs the same
incidents under `dg dev`'s daemon.)"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    SkipReason,
    build_sensor_context,
)

from fulfillment_assets.automation.durations import iso_time
from fulfillment_assets.automation.freshness import REFRESH_JOB_NAME
from fulfillment_assets.automation.incidents import (
    UI_ASSET_JOB,
    fulfillment_alert_sensor,
    run_as_known,
)
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.definitions import defs
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets.masking import KeyMask
from fulfillment_assets_tests.helpers import TEST_API_KEY
from fulfillment_assets_tests.webhook_receiver import WebhookReceiver

UI = "http://ui.example:3000"


class Ticks:
    """Evaluates the alert sensor tick after tick, carrying its cursor as the daemon does."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self.cursor: str | None = None

    def __call__(self) -> str:
        context = build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=defs)
        result = fulfillment_alert_sensor(context)
        self.cursor = context.cursor
        assert isinstance(result, SkipReason)
        return result.skip_message or ""


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("FULFILLMENT_ALERT_WEBHOOK_URL", receiver.url)
        monkeypatch.setenv("FULFILLMENT_UI_URL", UI)
        monkeypatch.setenv("FULFILLMENT_ALERT_RETRY_SECONDS", "0.01")
        yield receiver


def _refresh(instance: DagsterInstance) -> str:
    result = defs.resolve_job_def(REFRESH_JOB_NAME).execute_in_process(
        instance=instance, raise_on_error=False
    )
    return result.run_id


def test_no_webhook_no_alerts_and_the_tick_says_so(
    instance: DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    message = Ticks(instance)()
    assert message == "FULFILLMENT_ALERT_WEBHOOK_URL is not set: no alerts"
    assert message in capsys.readouterr().err


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_failed_refresh_alerts_once_and_recovers_once(
    demo_api: DemoApiServer, instance: DagsterInstance, hook: WebhookReceiver
) -> None:
    tick = Ticks(instance)
    assert tick() == "nothing changed; open incidents: none"

    demo_api.configure(fail_status=500)
    failed = _refresh(instance)
    tick()
    (alert,) = hook.messages
    # The cause first and once, then where it failed, as the user knows the run, then the link.
    cause, where, link = alert.splitlines()
    assert cause.startswith(
        f"[fulfillment] ALERT: the fulfillment API at {demo_api.url} answered HTTP 500 on GET "
        "/v1/fulfillment at offset 0, still failing after 3 retries"
    ), alert
    assert alert.count("HTTP 500") == 1 and "PipelineStepFailed" not in alert
    (ended,) = instance.get_records_for_run(failed, of_type=DagsterEventType.RUN_FAILURE).records
    failed_at = ended.event_log_entry.timestamp
    assert where == (
        "Failed: step `fulfillment_ingest` (`fulfillment/fulfillment_data`) of a "
        f"`fulfillment_refresh` run, at {iso_time(failed_at)}"
    )
    assert link == f"Run: {UI}/runs/{failed}"
    # The tick's log line is the cause, and the cursor keeps no message text.
    opened = json.loads(tick.cursor or "")["open"]
    assert opened == {
        "refresh": {"recovered": "A refresh run succeeded again", "since": iso_time(failed_at)}
    }
    # It keeps failing: still one incident, no second message.
    time.sleep(1.1)  # so a later "since" would show
    _refresh(instance)
    assert tick() == "nothing changed; open incidents: refresh"
    assert len(hook.messages) == 1

    demo_api.configure(fail_status=None)
    passed = _refresh(instance)
    tick()
    assert len(hook.messages) == 2
    recovered = hook.messages[1]
    # Open since the first failed run ended, not since the alert went out.
    assert recovered == (
        "[fulfillment] RECOVERED: A refresh run succeeded again "
        f"(open since {iso_time(failed_at)}): {UI}/runs/{passed}"
    )
    assert tick() == "nothing changed; open incidents: none"
    assert all(TEST_API_KEY not in json.dumps(body) for body in hook.bodies)
    # The cursor reads as JSON.
    assert json.loads(tick.cursor or "")["open"] == {}


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_an_error_check_alerts_once_naming_check_and_asset_and_recovers(
    demo_api: DemoApiServer, instance: DagsterInstance, hook: WebhookReceiver
) -> None:
    tick = Ticks(instance)
    # 20 % of customer ids null: past the check's 5 % ERROR threshold, which blocks the models.
    demo_api.configure(null_customer_id_fraction=0.2)
    failed = _refresh(instance)
    tick()
    (alert,) = hook.messages
    assert alert.startswith(
        "[fulfillment] ALERT: Check `customer_id_not_null` on `fulfillment/fulfillment_data` "
        "failed with ERROR: "
    )
    assert f"Run: {UI}/runs/{failed}" in alert
    # The run failed because of the check only: no second alert about a failed refresh.
    check = "check fulfillment/fulfillment_data:customer_id_not_null"
    assert tick() == f"nothing changed; open incidents: {check}"

    demo_api.configure(null_customer_id_fraction=0.0)
    _refresh(instance)
    tick()
    assert len(hook.messages) == 2
    assert hook.messages[1].startswith(
        "[fulfillment] RECOVERED: Check `customer_id_not_null` on `fulfillment/fulfillment_data` "
        "passes again"
    )


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_stale_table_alerts_once_and_recovers_once(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    hook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tick = Ticks(instance)
    # Never loaded is not stale.
    assert tick() == "nothing changed; open incidents: none"
    _refresh(instance)
    monkeypatch.setenv("FULFILLMENT_FRESHNESS_FAIL_SECONDS", "0")
    tick()
    tick()
    (alert,) = hook.messages
    assert alert.startswith("[fulfillment] ALERT: `fulfillment/fulfillment_data` is stale: loaded ")
    assert f"fails after 0 s. Asset: {UI}/assets/fulfillment/fulfillment_data" in alert

    monkeypatch.delenv("FULFILLMENT_FRESHNESS_FAIL_SECONDS")
    tick()
    assert len(hook.messages) == 2
    assert hook.messages[1].startswith(
        "[fulfillment] RECOVERED: `fulfillment/fulfillment_data` is fresh again"
    )
    latest = instance.get_latest_materialization_event(RAW_ASSET_KEY)
    assert latest is not None and hook.messages[1].endswith(f"{UI}/runs/{latest.run_id}")


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_webhook_that_is_down_is_retried_logged_and_breaks_nothing(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    hook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tick = Ticks(instance)
    demo_api.configure(fail_status=500)
    _refresh(instance)
    # Two 500s, then it takes the message: retried within the tick.
    hook.fail_next = 2
    assert tick().startswith("sent 1 of 1 message(s)")
    assert hook.attempts == 3 and len(hook.messages) == 1

    # Nobody listening at all: logged, the tick ends normally, and the run was not affected.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    monkeypatch.setenv("FULFILLMENT_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{closed_port}/x")
    demo_api.configure(fail_status=None)
    _refresh(instance)
    assert tick().startswith("sent 0 of 1 message(s)")
    err = capsys.readouterr().err
    assert "failed (attempt 3 of 3)" in err and "alert not delivered" in err


def test_redaction_masks_the_key_and_credential_values() -> None:
    text = (
        f"GET http://api/v1/fulfillment?offset=0&api_key={TEST_API_KEY}&limit=100 failed; "
        "token: abc123 password=hunter2 Authorization: Bearer xyz"
    )
    masked = KeyMask(TEST_API_KEY)(text)
    assert TEST_API_KEY not in masked
    assert "api_key=***" in masked and "offset=0" in masked and "limit=100" in masked
    for value in ("abc123", "hunter2", "xyz"):
        assert value not in masked
    # Without knowing the key, its query parameter is still masked.
    assert TEST_API_KEY not in KeyMask()(text)


def test_a_run_is_named_as_the_user_started_it() -> None:
    every = len(defs.resolve_asset_graph().materializable_asset_keys)
    all_keys = frozenset(defs.resolve_asset_graph().materializable_asset_keys)
    assert run_as_known(DagsterRun(job_name="fulfillment_refresh"), every) == (
        "a `fulfillment_refresh` run"
    )
    ui_all = DagsterRun(job_name=UI_ASSET_JOB, asset_selection=all_keys)
    assert run_as_known(ui_all, every) == "a run of Materialize all from the UI"
    ui_one = DagsterRun(job_name=UI_ASSET_JOB, asset_selection=frozenset({RAW_ASSET_KEY}))
    assert run_as_known(ui_one, every) == "a run of Materialize from the UI (1 asset(s))"
