"""The alert sensor: turns failed refreshes, blocking checks failing with ERROR and a raw table
past its freshness fail window into one webhook message per incident, and one more when it is
over.

Incidents are kept in the sensor's cursor (JSON: what is open since when, and the last run event
read), so a failure that lasts many ticks is reported once. Each tick reads the runs that ended
since the last one (every one of them, in order, through `fetch_run_status_changes`), what they
evaluated and where they failed, and the raw table's latest materialization; then it sends the
difference between the incidents open before and after.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunStatusChangeRecordsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from fulfillment_assets import settings
from fulfillment_assets.automation.alerts import post_alert
from fulfillment_assets.automation.durations import iso_time
from fulfillment_assets.automation.errors import error_chain, is_check_failure
from fulfillment_assets.automation.freshness import (
    freshness_summary,
    is_fulfillment_run,
)
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.masking import KeyMask

STALE = "stale"
REFRESH = "refresh"
PAGE = 100

Incidents = dict[str, dict[str, Any]]


def run_link(run_id: str) -> str:
    return f"{settings.ui_url()}/runs/{run_id}"


def _ended_runs(instance: DagsterInstance, after: int | None) -> list[tuple[int, str, bool]]:
    """(storage id, run id, succeeded) of every run that ended after `after`, oldest first."""
    ended = []
    event_type: Literal[DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE]
    for event_type, succeeded in (
        (DagsterEventType.RUN_SUCCESS, True),
        (DagsterEventType.RUN_FAILURE, False),
    ):
        cursor = None
        while True:
            result = instance.fetch_run_status_changes(
                RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after),
                limit=PAGE,
                cursor=cursor,
                ascending=True,
            )
            ended += [(r.storage_id, r.event_log_entry.run_id, succeeded) for r in result.records]
            if not result.has_more:
                break
            cursor = result.cursor
    return sorted(ended)


def _error_text(error: Any) -> str:
    """An error and its causes, as the run page shows them (Dagster wraps user errors)."""
    return "\n".join(cause.message.strip() for cause in error_chain(error))


def _apply_run(
    instance: DagsterInstance,
    run: DagsterRun,
    succeeded: bool,
    open_: Incidents,
    recovered: dict[str, str],
) -> None:
    """Opens or closes the incidents this run's outcome and check evaluations speak to;
    `recovered` gets the run that closed each incident."""
    records = instance.get_records_for_run(
        run.run_id,
        of_type={
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.ASSET_CHECK_EVALUATION,
            DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        },
    ).records
    events = [record.event_log_entry.dagster_event for record in records]
    assets_of_step: dict[str, list[str]] = {}
    for event in events:
        if event and event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            assets_of_step.setdefault(event.step_key or "", []).append(
                event.asset_key.to_user_string() if event.asset_key else "?"
            )
    link = run_link(run.run_id)
    for event in events:
        if not event or event.event_type != DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        evaluation = event.asset_check_evaluation_data
        asset = evaluation.asset_key.to_user_string()
        key = f"check {asset}:{evaluation.check_name}"
        if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR:
            open_.setdefault(
                key,
                {
                    "text": f"Check `{evaluation.check_name}` on `{asset}` failed with ERROR: "
                    f"{evaluation.description or 'no description'}\nRun: {link}",
                    "recovered": f"Check `{evaluation.check_name}` on `{asset}` passes again",
                },
            )
        elif open_.pop(key, None):
            recovered[key] = link
    if succeeded:
        if open_.pop(REFRESH, None):
            recovered[REFRESH] = link
        return
    failures = [
        event
        for event in events
        if event
        and event.is_step_failure
        and event.step_failure_data.error
        and not is_check_failure(event.step_failure_data.error)
    ]
    if failures or not any(e and e.is_step_failure for e in events):
        what = "the run failed before any step"
        if failures:
            step = failures[0].step_key or "?"
            assets = ", ".join(f"`{a}`" for a in assets_of_step.get(step, [])) or "no asset"
            what = f"step `{step}` ({assets}) failed: "
            what += _error_text(failures[0].step_failure_data.error)
        open_.setdefault(
            REFRESH,
            {
                "text": f"Refresh run of `{run.job_name}` failed, {what}\nRun: {link}",
                "recovered": "A refresh run succeeded again",
            },
        )


def _apply_freshness(
    instance: DagsterInstance, now: float, open_: Incidents, recovered: dict[str, str]
) -> None:
    latest = instance.get_latest_materialization_event(RAW_ASSET_KEY)
    window = settings.freshness_fail_window()
    asset = RAW_ASSET_KEY.to_user_string()
    # A table never loaded is not stale: the freshness sensor requests its first load.
    if latest is None or now - latest.timestamp <= window.total_seconds():
        if open_.pop(STALE, None) and latest is not None:
            recovered[STALE] = f"{freshness_summary(now - latest.timestamp, window)}; " + (
                run_link(latest.run_id) if latest.run_id else f"{settings.ui_url()}/assets/{asset}"
            )
        return
    open_.setdefault(
        STALE,
        {
            "text": f"`{asset}` is stale: {freshness_summary(now - latest.timestamp, window)}. "
            f"Asset: {settings.ui_url()}/assets/{asset}",
            "recovered": f"`{asset}` is fresh again",
        },
    )


@sensor(
    minimum_interval_seconds=settings.alert_sensor_interval_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "POSTs a Slack-compatible message to FULFILLMENT_ALERT_WEBHOOK_URL when a refresh run "
        "fails, a blocking check fails with ERROR, or the raw table goes past its freshness fail "
        "window; once per incident, and once more when it is over. Does nothing if unset."
    ),
)
def fulfillment_alert_sensor(context: SensorEvaluationContext) -> SkipReason:
    url = settings.alert_webhook_url()
    if url is None:
        reason = "FULFILLMENT_ALERT_WEBHOOK_URL is not set: no alerts"
        context.log.info(reason)
        return SkipReason(reason)
    state = json.loads(context.cursor) if context.cursor else {}
    before: Incidents = state.get("open", {})
    after: Incidents = {key: dict(value) for key, value in before.items()}
    recovered: dict[str, str] = {}
    last = state.get("after_run_event")
    instance = context.instance
    for storage_id, run_id, succeeded in _ended_runs(instance, last):
        run = instance.get_run_by_id(run_id)
        if run is not None and is_fulfillment_run(run):
            _apply_run(instance, run, succeeded, after, recovered)
        last = storage_id
    now = time.time()
    _apply_freshness(instance, now, after, recovered)

    sent = []
    for key in after.keys() - before.keys():
        after[key]["since"] = iso_time(now)
        sent.append(f"[fulfillment] ALERT: {after[key]['text']}")
    for key in before.keys() - after.keys():
        since = before[key].get("since", "?")
        sent.append(
            f"[fulfillment] RECOVERED: {before[key]['recovered']} (open since {since}): "
            f"{recovered.get(key, '')}"
        )
    delivered = [text for text in sent if post_alert(url, text, context.log)]
    context.update_cursor(json.dumps({"after_run_event": last, "open": after}))
    summary = f"sent {len(delivered)} of {len(sent)} message(s)" if sent else "nothing changed"
    summary += f"; open incidents: {', '.join(sorted(after)) or 'none'}"
    for text in delivered:
        context.log.info(f"sent: {KeyMask.configured()(text.splitlines()[0])}")
    context.log.info(summary)
    return SkipReason(summary)
