"""How the data stays fresh: a freshness policy, the refresh job, its schedule, and a sensor that
requests a refresh when the raw table is stale past its policy."""

from dagster import (
    AssetSelection,
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
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
from dagster._time import get_current_timestamp  # Dagster's clock, which its tests can freeze

from fulfillment_assets import settings
from fulfillment_assets.assets import RAW_ASSET_KEY

REFRESH_JOB_NAME = "fulfillment_refresh"

# The raw table and everything built on it: what the refresh job materializes and what the
# freshness policy covers.
refresh_selection = AssetSelection.groups(settings.ASSET_GROUP).materializable()

FRESHNESS_POLICY = FreshnessPolicy.time_window(
    fail_window=settings.FRESHNESS_FAIL_WINDOW, warn_window=settings.FRESHNESS_WARN_WINDOW
)

fulfillment_refresh_job = define_asset_job(
    REFRESH_JOB_NAME,
    selection=refresh_selection,
    description="Loads the fulfillment API into the raw table and rebuilds everything on it.",
)

fulfillment_refresh_schedule = ScheduleDefinition(
    name="fulfillment_refresh_schedule",
    job=fulfillment_refresh_job,
    cron_schedule=settings.REFRESH_CRON,
    default_status=DefaultScheduleStatus.STOPPED,
    description="The regular refresh; off by default, the freshness sensor covers staleness.",
)


@sensor(
    job=fulfillment_refresh_job,
    minimum_interval_seconds=settings.FRESHNESS_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Requests a refresh of the raw table and everything downstream when the raw table is "
        "older than its freshness policy's fail window, or has never been loaded. Requests "
        "nothing while the data is fresh, while a refresh is in flight, or within the backoff "
        "after its last request."
    ),
)
def fulfillment_freshness_sensor(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    # Any run that loads the raw table counts: the refresh job, or "Materialize all" in the UI.
    in_flight = [
        run
        for run in context.instance.get_runs(
            filters=RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES), limit=50
        )
        if run.job_name == REFRESH_JOB_NAME or RAW_ASSET_KEY in (run.asset_selection or ())
    ]
    if in_flight:
        return SkipReason(f"a refresh is in flight (run {in_flight[0].run_id})")

    now = get_current_timestamp()
    last_request = float(context.cursor) if context.cursor else None
    backoff = settings.FRESHNESS_RETRY_BACKOFF.total_seconds()
    if last_request is not None and now - last_request < backoff:
        return SkipReason(f"requested a refresh {now - last_request:.0f} s ago; backing off")

    event = context.instance.get_latest_materialization_event(RAW_ASSET_KEY)
    fail_window = FRESHNESS_POLICY.fail_window.to_timedelta().total_seconds()
    if event is None:
        reason = "the raw table has never been loaded"
    elif now - event.timestamp > fail_window:
        reason = f"the raw table is {now - event.timestamp:.0f} s old, past its {fail_window:.0f} s"
    else:
        return SkipReason(f"fresh: loaded {now - event.timestamp:.0f} s ago")

    context.update_cursor(str(now))
    context.log.info(f"requesting a refresh: {reason}")
    return RunRequest(tags={"fulfillment/trigger": "freshness", "fulfillment/reason": reason})
