"""What the layers agree on: the asset keys, the model tables' names and the assets' owners.

Kept apart from the modules that build the assets, so a check, a sensor or a test names an asset
without building its definition (the raw asset's decorator builds the dlt source and pipeline).
Only Dagster's `AssetKey` and `settings` are imported here. The column names the source writes
too (`DELETED_AT`, `LOAD_ID`) are in `settings`: the source imports no Dagster.
"""

from dagster import AssetKey

from fulfillment_assets import settings

API_ASSET_KEY = AssetKey([settings.DATASET_NAME, "fulfillment_api"])
RAW_ASSET_KEY = AssetKey([settings.DATASET_NAME, settings.RESOURCE_NAME])

# The tables the models build from the raw table, in the same dataset.
VALIDATED = "orders_validated"
REJECTED = "orders_rejected"
SUMMARY = "orders_daily_summary"
VALIDATED_KEY = AssetKey([settings.DATASET_NAME, VALIDATED])
REJECTED_KEY = AssetKey([settings.DATASET_NAME, REJECTED])
SUMMARY_KEY = AssetKey([settings.DATASET_NAME, SUMMARY])

OWNERS = ["team:data-engineering"]

# The raw asset's step (its op): where its run config goes (`ops: {fulfillment_ingest: ...}`).
INGEST_STEP = "fulfillment_ingest"
