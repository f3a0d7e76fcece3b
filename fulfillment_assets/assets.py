"""The fulfillment API and its raw table as Dagster assets, through dagster-dlt."""

from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
)
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from dlt.common.configuration.exceptions import ConfigFieldMissingException

from fulfillment_assets import settings
from fulfillment_assets.source import (
    API_KEY_SETTING,
    BASE_URL_SETTING,
    describe_fulfillment,
    fulfillment,
)
from fulfillment_assets.warehouse import Warehouse, described_pipeline

API_ASSET_KEY = AssetKey([settings.DATASET_NAME, "fulfillment_api"])
RAW_ASSET_KEY = AssetKey([settings.DATASET_NAME, settings.RESOURCE_NAME])
OWNERS = ["team:data-engineering"]

fulfillment_api = AssetSpec(
    key=API_ASSET_KEY,
    description=(
        f"The third-party fulfillment REST API, `GET {settings.ENDPOINT_PATH}`: offset pages of "
        f"{settings.PAGE_LIMIT}, API key in the `api_key` query parameter. Not materialized "
        "here; it is where the lineage starts."
    ),
    group_name=settings.ASSET_GROUP,
    kinds={"api"},
    owners=OWNERS,
    metadata={"endpoint": settings.ENDPOINT_PATH, "page_limit": settings.PAGE_LIMIT},
)

RAW_COLUMN_SCHEMA = TableSchema(
    columns=[
        TableColumn(
            name=name,
            type=str(hints["data_type"]),
            description=settings.COLUMN_DESCRIPTIONS.get(name),
        )
        for name, hints in {**settings.CONTRACT_COLUMNS, **settings.DOCUMENTED_COLUMNS}.items()
    ]
)


class FulfillmentTranslator(DagsterDltTranslator):
    """Readable keys (`fulfillment/fulfillment_data`), lineage from the API, and descriptions."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        spec = super().get_asset_spec(data)
        destination = data.destination.destination_name if data.destination else "duckdb"
        return spec.replace_attributes(
            key=AssetKey([settings.DATASET_NAME, data.resource.name]),
            deps=[API_ASSET_KEY],
            group_name=settings.ASSET_GROUP,
            kinds={"dlt", destination},
            owners=OWNERS,
            description=(
                "Raw fulfillment records loaded by dlt from the fulfillment API, merged on `id` "
                "(one row per order, newest version wins). Extra fields the API sends are kept."
            ),
            tags={"layer": "raw"},
        ).merge_attributes(metadata={"dagster/column_schema": RAW_COLUMN_SCHEMA})


def _loader_file_format(pipeline: Any) -> str | None:
    """Parquet where the destination takes it: Arrow pages then load without per-row work."""
    formats = pipeline.destination.capabilities().supported_loader_file_formats
    return "parquet" if "parquet" in formats else None


@dlt_assets(
    dlt_source=describe_fulfillment(),
    dlt_pipeline=described_pipeline(),
    name="fulfillment_ingest",
    dagster_dlt_translator=FulfillmentTranslator(),
    pool="fulfillment_ingest",
)
def fulfillment_dlt_assets(
    context: AssetExecutionContext, dlt: DagsterDltResource, warehouse: Warehouse
) -> Iterator[Any]:
    """Loads the fulfillment API into the raw table; configuration is resolved per run."""
    try:
        source = fulfillment()
    except ConfigFieldMissingException as missing:
        setting = API_KEY_SETTING if "api_key" in missing.fields else BASE_URL_SETTING
        raise Failure(f"the fulfillment source is not configured: set {setting}") from None
    with warehouse.loading_pipeline(context.log) as pipeline:
        for result in dlt.run(
            context=context,
            dlt_source=source,
            dlt_pipeline=pipeline,
            loader_file_format=_loader_file_format(pipeline),
        ):
            if isinstance(result, MaterializeResult):
                stats = _table_stats(warehouse)
                yield result._replace(metadata={**(result.metadata or {}), **stats})
            else:
                yield result


def _table_stats(warehouse: Warehouse) -> dict[str, Any]:
    """Row count and null counts and fractions of the whole table, plotted run over run."""
    rows = null_customer = null_status = 0
    # An empty API on the first run: dlt creates no table, and there is nothing to count.
    if warehouse.columns(settings.RESOURCE_NAME):
        ((rows, null_customer, null_status),) = warehouse.query(
            "SELECT count(*), count(*) - count(customer_id), count(*) - count(order_status) "
            f"FROM {settings.RESOURCE_NAME}"
        )
    return {
        "dagster/row_count": MetadataValue.int(rows),
        "null_customer_id_count": MetadataValue.int(null_customer),
        "null_order_status_count": MetadataValue.int(null_status),
        "null_customer_id_fraction": MetadataValue.float(null_customer / rows if rows else 0.0),
        "null_order_status_fraction": MetadataValue.float(null_status / rows if rows else 0.0),
    }
