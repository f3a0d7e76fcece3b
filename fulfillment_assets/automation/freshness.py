"""How the data stays fresh: a freshness policy, the refresh job, its schedule, and a sensor that
requests a refresh when the raw table is stale past its policy.

Why a sensor of its own and not declarative automation (`AutomationCondition.freshness_failed()`
or `missing()`, `~in_progress()`): the condition sensor would do the requesting, but not back off
for a while after a request that did not help (a down API would get a run every tick), and its
evaluations speak in condition labels; this sensor says, in hours and minutes, why it requested
or skipped, in the tick's log and its skip reason.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta

from dagster import (
    AssetSelection,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    FreshnessPolicy,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from fulfillment_assets import settings
from fulfillment_assets.automation.durations import human_duration, iso_time, parse_iso_time
from fulfillment_assets.contract import INGEST_STEP, RAW_ASSET_KEY

REFRESH_JOB_NAME = "fulfillment_refresh"
FULL_REFRESH_JOB_NAME = "fulfillment_full_refresh"

# The raw table and everything built on it: what the refresh job materializes and what the
# freshness policy covers.
refresh_selection = AssetSelection.groups(settings.ASSET_GROUP).materializable()

FRESHNESS_POLICY = FreshnessPolicy.time_window(
    fail_window=settings.freshness_fail_window(), warn_window=settings.freshness_warn_window()
)

# Every status of a run that has not ended (queued, starting, started, canceling, suspended, and
# whatever Dagster adds later): such a run may still load the raw table.
ENDED_STATUSES = {
    DagsterRunStatus.SUCCESS,
    DagsterRunStatus.FAILURE,
    DagsterRunStatus.CANCELED,
    DagsterRunStatus.MANAGED,
}
IN_FLIGHT_STATUSES = [status for status in DagsterRunStatus if status not in ENDED_STATUSES]

fulfillment_refresh_job = define_asset_job(
    REFRESH_JOB_NAME,
    selection=refresh_selection,
    description="Loads the fulfillment API into the raw table and rebuilds everything on it.",
)

# A full refresh marks deletes in the raw table: the tables built on it are rebuilt in the same
# run, so none of them keeps a row the refresh just marked deleted (the raw asset alone with
# `full_refresh: true` would leave them unsynced until someone materializes them).
fulfillment_full_refresh_job = define_asset_job(
    FULL_REFRESH_JOB_NAME,
    selection=refresh_selection,
    config={"ops": {INGEST_STEP: {"config": {"full_refresh": True}}}},
    description=(
        "A full refresh: walks every page without the incremental cursor, marks the orders the "
        "API no longer returns as deleted, sets the cursor anew, and rebuilds every table on the "
        "raw one in the same run. Launch it from its Launchpad (`resume: false` there walks "
        "afresh instead of resuming an unfinished walk)."
    ),
)
# The project's own jobs: their runs load the raw table, and the alerts report on them.
PROJECT_JOB_NAMES = {REFRESH_JOB_NAME, FULL_REFRESH_JOB_NAME}

fulfillment_refresh_schedule = ScheduleDefinition(
    name="fulfillment_refresh_schedule",
    job=fulfillment_refresh_job,
    cron_schedule=settings.REFRESH_CRON,
    default_status=DefaultScheduleStatus.STOPPED,
    description="The regular refresh; off by default, the freshness sensor covers staleness.",
)


# What the project's runs are, in one place: the freshness sensor waits for the runs that load
# the raw table; the alerts report on every run of the project.
def loads_raw_table(run: DagsterRun) -> bool:
    """The project's jobs, or any run that materializes the raw table (e.g. from the UI)."""
    return run.job_name in PROJECT_JOB_NAMES or RAW_ASSET_KEY in (run.asset_selection or ())


def is_fulfillment_run(run: DagsterRun) -> bool:
    """The project's jobs, or a run (e.g. from the UI) materializing one of its assets."""
    if run.job_name in PROJECT_JOB_NAMES:
        return True
    return any(key.path[0] == settings.DATASET_NAME for key in run.asset_selection or ())


def refreshes_in_flight(instance: DagsterInstance) -> list[DagsterRun]:
    """Every run not yet ended that loads the raw table (no limit: all of them are read)."""
    records = instance.get_run_records(filters=RunsFilter(statuses=IN_FLIGHT_STATUSES))
    return [record.dagster_run for record in records if loads_raw_table(record.dagster_run)]


def freshness_summary(age_seconds: float, fail_window: timedelta) -> str:
    """`loaded 2 h 5 min ago; fails after 24 h`."""
    return f"loaded {human_duration(age_seconds)} ago; fails after {human_duration(fail_window)}"


@dataclass(frozen=True)
class Decision:
    request: bool
    reason: str


def decide(
    *,
    now: float,
    loaded_at: float | None,
    last_request: float | None,
    in_flight: list[DagsterRun],
    fail_window: timedelta,
    backoff: timedelta,
) -> Decision:
    """Whether to request a refresh at `now`, and why (or why not), in an operator's words."""
    if in_flight:
        run = in_flight[0]
        more = f" and {len(in_flight) - 1} more" if len(in_flight) > 1 else ""
        return Decision(
            False, f"a refresh is in flight: run {run.run_id} ({run.status.value}){more}"
        )
    if loaded_at is None:
        stale = "the raw table has never been loaded"
    elif now - loaded_at > fail_window.total_seconds():
        stale = f"stale: {freshness_summary(now - loaded_at, fail_window)}"
    else:
        return Decision(False, f"fresh: {freshness_summary(now - loaded_at, fail_window)}")
    if last_request is not None and now - last_request < backoff.total_seconds():
        return Decision(
            False,
            f"{stale}, but a refresh was requested {human_duration(now - last_request)} ago; "
            f"backing off for {human_duration(backoff)} between requests",
        )
    return Decision(True, stale)


def _last_request(cursor: str | None) -> tuple[float | None, str | None]:
    """When the last refresh was requested, and why, from the cursor (`sensor_cursor`); older
    cursors are `{"last_request": "<ISO time>", "reason": ...}` or a bare number."""
    if not cursor:
        return None, None
    try:
        state = json.loads(cursor)
        requested = state["last_request"]
        reason = state.get("last_request_reason", state.get("reason"))
        return (parse_iso_time(requested) if requested else None), reason
    except (ValueError, KeyError, TypeError):
        return float(cursor), None


def sensor_cursor(
    now: float, decision: Decision, last_request: float | None, last_request_reason: str | None
) -> str:
    """The cursor, rewritten every tick: what the sensor found when it last looked (`state`, as
    the tick's log says it) and its last request (kept for the backoff), as JSON the UI shows
    under Automation. Written on every tick, so after a load it says the table is fresh, not
    what it was when a refresh was last requested."""
    return json.dumps(
        {
            "checked_at": iso_time(now),
            "state": decision.reason,
            "last_request": iso_time(last_request) if last_request is not None else None,
            "last_request_reason": last_request_reason,
        }
    )


@sensor(
    job=fulfillment_refresh_job,
    minimum_interval_seconds=settings.freshness_sensor_interval_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Requests a refresh of the raw table and everything downstream when the raw table is "
        "older than its freshness policy's fail window, or has never been loaded. Requests "
        "nothing while the data is fresh, while a refresh is in flight, or within the backoff "
        "after its last request; every tick's log says which, and so does its cursor."
    ),
)
def fulfillment_freshness_sensor(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    instance = context.instance
    latest = instance.get_latest_materialization_event(RAW_ASSET_KEY)
    now = time.time()
    last_request, last_request_reason = _last_request(context.cursor)
    decision = decide(
        now=now,
        loaded_at=latest.timestamp if latest else None,
        last_request=last_request,
        in_flight=refreshes_in_flight(instance),
        fail_window=settings.freshness_fail_window(),
        backoff=settings.freshness_retry_backoff(),
    )
    if decision.request:
        last_request, last_request_reason = now, decision.reason
    context.update_cursor(sensor_cursor(now, decision, last_request, last_request_reason))
    if not decision.request:
        context.log.info(f"no refresh requested: {decision.reason}")
        return SkipReason(decision.reason)
    context.log.info(f"requesting a refresh: {decision.reason}")
    return RunRequest(
        tags={"fulfillment/trigger": "freshness", "fulfillment/reason": decision.reason}
    )
