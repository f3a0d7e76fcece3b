"""The alert sensor: turns failed refreshes, blocking checks failing with ERROR and a raw table
past its freshness fail window into one webhook message per incident, and one more when it is
over.

Incidents are kept in the sensor's cursor (JSON: what is open since when it began, and the last
run event read), so a failure that lasts many ticks is reported once. A message starts with what
went wrong (a failed run's cause, once: `errors.readable_cause`), then where, then the link.

Each tick reads the runs that ended since the last one (every one of them, in order, through
`fetch_run_status_changes`), what they evaluated and where they failed, and the raw table's
latest materialization; then it sends the difference between the incidents open before and
after.
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
from fulfillment_assets.automation.errors import readable_cause
from fulfillment_assets.automation.freshness import (
    freshness_summary,
    is_fulfillment_run,
)
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.masking import KeyMask

STALE = "stale"
REFRESH = "refresh"
PAGE = 100
# The job Dagster runs for "Materialize" in the UI (its name is not public API).
UI_ASSET_JOB = "__ASSET_JOB"

Incidents = dict[str, dict[str, Any]]


def run_link(run_id: str) -> str:
    return f"{settings.ui_url()}/runs/{run_id}"


def _ended_runs(instance: DagsterInstance, after: int | None) -> list[tuple[int, str, bool, float]]:
    """(storage id, run id, succeeded, when) of every run that ended after `after`, oldest
    first."""
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
            ended += [
                (r.storage_id, r.event_log_entry.run_id, succeeded, r.event_log_entry.timestamp)
                for r in result.records
            ]
            if not result.has_more:
                break
            cursor = result.cursor
    return sorted(ended)


def run_as_known(run: DagsterRun, every_asset: int | None) -> str:
    """The run as the person who started it knows it: its job, or the UI's Materialize (all,
    when it selected `every_asset` of them)."""
    if run.job_name != UI_ASSET_JOB:
        return f"a `{run.job_name}` run"
    selected = len(run.asset_selection or ())
    if every_asset is not None and selected >= every_asset:
        return "a run of Materialize all from the UI"
    return f"a run of Materialize from the UI ({selected} asset(s))"


def _apply_run(
    instance: DagsterInstance,
    run: DagsterRun,
    ended: tuple[bool, float],
    open_: Incidents,
    recovered: dict[str, str],
    every_asset: int | None = None,
) -> None:
    """Opens or closes the incidents this run's outcome (`ended`: succeeded, when) and check
    evaluations speak to; `recovered` gets the run that closed each incident."""
    succeeded, ended_at = ended
    records = instance.get_records_for_run(
        run.run_id,
        of_type={
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.ASSET_CHECK_EVALUATION,
            DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        },
    ).records
    events = [record.event_log_entry.dagster_event for record in records]
    when = {id(r.event_log_entry.dagster_event): r.event_log_entry.timestamp for r in records}
    assets_of_step: dict[str, list[str]] = {}
    for event in events:
        if event and event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            assets_of_step.setdefault(event.step_key or "", []).append(
                event.asset_key.to_user_string() if event.asset_key else "?"
            )
    link = run_link(run.run_id)
    # Steps that failed because a blocking check failed with ERROR: Dagster fails such a step
    # once its compute has ended with that evaluation. The check's own incident reports it, so
    # the step's failure is no refresh incident. (Each blocking check is an `@asset_check` of
    # its own step, whose compute ends with its one result: no other error follows it.)
    failed_by_check: set[str | None] = set()
    for event in events:
        if not event or event.event_type != DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        evaluation = event.asset_check_evaluation_data
        asset = evaluation.asset_key.to_user_string()
        key = f"check {asset}:{evaluation.check_name}"
        if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR:
            if evaluation.blocking:
                failed_by_check.add(event.step_key)
            open_.setdefault(
                key,
                {
                    "text": f"Check `{evaluation.check_name}` on `{asset}` failed with ERROR: "
                    f"{evaluation.description or 'no description'}\nRun: {link}",
                    "recovered": f"Check `{evaluation.check_name}` on `{asset}` passes again",
                    "since": iso_time(when.get(id(event), ended_at)),
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
        and event.step_key not in failed_by_check
    ]
    if failures or not any(e and e.is_step_failure for e in events):
        cause, where = "The run failed before any step", ""
        if failures:
            step = failures[0].step_key or "?"
            assets = ", ".join(f"`{a}`" for a in assets_of_step.get(step, [])) or "no asset"
            cause = readable_cause(failures[0].step_failure_data.error)
            where = f"step `{step}` ({assets}) of "
        open_.setdefault(
            REFRESH,
            {
                "text": f"{cause}\nFailed: {where}{run_as_known(run, every_asset)}, at "
                f"{iso_time(ended_at)}\nRun: {link}",
                "recovered": "A refresh run succeeded again",
                "since": iso_time(ended_at),
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
            # It went stale when the fail window ran out after the last load.
            "since": iso_time(latest.timestamp + window.total_seconds()),
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
    every_asset = _asset_count(context)
    for storage_id, run_id, succeeded, ended_at in _ended_runs(instance, last):
        run = instance.get_run_by_id(run_id)
        if run is not None and is_fulfillment_run(run):
            _apply_run(instance, run, (succeeded, ended_at), after, recovered, every_asset)
        last = storage_id
    now = time.time()
    _apply_freshness(instance, now, after, recovered)

    sent = []
    for key in after.keys() - before.keys():
        after[key].setdefault("since", iso_time(now))
        sent.append(f"[fulfillment] ALERT: {after[key]['text']}")
    for key in before.keys() - after.keys():
        since = before[key].get("since", "?")
        sent.append(
            f"[fulfillment] RECOVERED: {before[key]['recovered']} (open since {since}): "
            f"{recovered.get(key, '')}"
        )
    delivered = [text for text in sent if post_alert(url, text, context.log)]
    # The cursor keeps what a later tick needs: when each incident began and what to say when it
    # is over; the message itself was sent.
    kept = {key: {k: v for k, v in value.items() if k != "text"} for key, value in after.items()}
    context.update_cursor(json.dumps({"after_run_event": last, "open": kept}))
    summary = f"sent {len(delivered)} of {len(sent)} message(s)" if sent else "nothing changed"
    summary += f"; open incidents: {', '.join(sorted(after)) or 'none'}"
    for text in delivered:
        context.log.info(f"sent: {KeyMask.configured()(text.splitlines()[0])}")
    context.log.info(summary)
    return SkipReason(summary)


def _asset_count(context: SensorEvaluationContext) -> int | None:
    """How many assets the code location materializes ("Materialize all" selects them all);
    None where the sensor is evaluated without its definitions."""
    try:
        repository = context.repository_def
    except Exception:  # Dagster raises when the context was built without definitions
        return None
    if repository is None:
        return None
    return len(repository.asset_graph.materializable_asset_keys)
