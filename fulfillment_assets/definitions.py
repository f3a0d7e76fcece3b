"""The code location: every asset, check, automation and resource of the project, in one place."""

from dagster import Definitions, in_process_executor
from dagster_dlt import DagsterDltResource

from fulfillment_assets.assets import fulfillment_api, fulfillment_dlt_assets
from fulfillment_assets.automation import fulfillment_refresh_job
from fulfillment_assets.warehouse import Warehouse

defs = Definitions(
    assets=[fulfillment_api, fulfillment_dlt_assets],
    jobs=[fulfillment_refresh_job],
    resources={"dlt": DagsterDltResource(), "warehouse": Warehouse()},
    # One process per step buys nothing here: the steps are I/O-bound SQL and HTTP, and a
    # process costs seconds per run.
    executor=in_process_executor,
)
