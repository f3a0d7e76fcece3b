"""The code location: every asset, check, automation and resource of the project, in one place."""

from dagster import Definitions, in_process_executor, map_asset_specs
from dagster_dlt import DagsterDltResource

from fulfillment_assets.automation.dead_runs import fulfillment_dead_run_sensor
from fulfillment_assets.automation.freshness import (
    FRESHNESS_POLICY,
    fulfillment_freshness_sensor,
    fulfillment_full_refresh_job,
    fulfillment_refresh_job,
    fulfillment_refresh_schedule,
)
from fulfillment_assets.automation.incidents import fulfillment_alert_sensor
from fulfillment_assets.ingest.assets import fulfillment_api, fulfillment_dlt_assets
from fulfillment_assets.models.assets import model_assets, model_checks
from fulfillment_assets.quality.checks import raw_table_checks
from fulfillment_assets.quality.name_checks import field_names_distinct
from fulfillment_assets.quality.value_checks import values_of_their_column_type
from fulfillment_assets.quality.version_checks import updated_at_never_goes_back
from fulfillment_assets.quality.walk_checks import no_rows_marked_deleted, walk_complete
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.run_liveness import RUN_LIVENESS, RunLiveness

# One freshness policy for the raw table and everything built on it.
fresh_assets = map_asset_specs(
    lambda spec: spec.replace_attributes(freshness_policy=FRESHNESS_POLICY),
    [fulfillment_dlt_assets, *model_assets],
)

defs = Definitions(
    assets=[fulfillment_api, *fresh_assets],
    asset_checks=[
        *raw_table_checks,
        *model_checks,
        field_names_distinct,
        updated_at_never_goes_back,
        values_of_their_column_type,
        walk_complete,
        no_rows_marked_deleted,
    ],
    jobs=[fulfillment_refresh_job, fulfillment_full_refresh_job],
    schedules=[fulfillment_refresh_schedule],
    sensors=[fulfillment_freshness_sensor, fulfillment_alert_sensor, fulfillment_dead_run_sensor],
    resources={
        "dlt": DagsterDltResource(),
        # Set to what the environment gives when the code location loads, for the UI to show
        # (the DuckDB file in use); each run reads the environment again (`Warehouse`).
        "warehouse": Warehouse.as_configured(),
        # Required by every asset and check: dead runs failed, this run's liveness held.
        RUN_LIVENESS: RunLiveness(),
    },
    # One process per step buys nothing here: the steps are I/O-bound SQL and HTTP, and a
    # process costs seconds per run.
    executor=in_process_executor,
)
