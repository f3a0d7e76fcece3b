"""How the data stays fresh: the refresh job, its schedule, and the sensor acting on freshness."""

from dagster import AssetSelection, define_asset_job

from fulfillment_assets import settings

REFRESH_JOB_NAME = "fulfillment_refresh"

# Everything this project materializes: the raw table and all that is built on it.
refresh_selection = AssetSelection.groups(settings.ASSET_GROUP).materializable()

fulfillment_refresh_job = define_asset_job(
    REFRESH_JOB_NAME,
    selection=refresh_selection,
    description="Loads the fulfillment API into the raw table and rebuilds everything on it.",
)
