"""The sensor that marks failed the runs whose process died, so the runs queued behind them proceed.

Every run does the same when it starts (`warehouse/run_liveness.py`, which says how a dead run is
told from a live one); the sensor does it on its own interval too, for the runs queued in the UI
or by a schedule or sensor, which no new run started from the CLI would come to free.
"""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from fulfillment_assets import settings
from fulfillment_assets.warehouse.run_liveness import fail_dead_runs


@sensor(
    minimum_interval_seconds=settings.dead_run_sensor_interval_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Marks failed the runs of this project whose process died (SIGKILL, out of memory) "
        "without reporting an end, so the runs queued behind them proceed. Requests no run."
    ),
)
def fulfillment_dead_run_sensor(context: SensorEvaluationContext) -> SkipReason:
    sweep = fail_dead_runs(context.instance, context.log)
    # Every tick says what it checked, dead runs or not: a tick's log is where an operator
    # looks to see the sensor at work.
    context.log.info(sweep.summary())
    return SkipReason(sweep.summary())
