"""The fulfillment API and its raw table as Dagster assets, through dagster-dlt."""

import dataclasses
from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    JsonMetadataValue,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    TableSchemaMetadataValue,
    multi_asset,
)
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, build_dlt_asset_specs
from dagster_dlt.constants import META_KEY_PIPELINE, META_KEY_SOURCE, META_KEY_TRANSLATOR
from dagster_dlt.translator import DltResourceTranslatorData
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.extract.source import DltSource

from fulfillment_assets import settings
from fulfillment_assets.contract import API_ASSET_KEY, INGEST_STEP, OWNERS
from fulfillment_assets.display import share
from fulfillment_assets.ingest.columns import RAW_COLUMN_SCHEMA, column_description
from fulfillment_assets.ingest.deletes import mark_deletes_of_walk
from fulfillment_assets.ingest.failures import readable_failure
from fulfillment_assets.ingest.run_log import library_lines_in_run_log
from fulfillment_assets.ingest.sync_metadata import (
    IngestConfig,
    partial_walk_observation,
    project_fields_first,
    sync_metadata,
    walk_of_last_run,
    walk_progress,
)
from fulfillment_assets.ingest.versions import keep_newest, staged_table, update_versions_table
from fulfillment_assets.ingest.walks import (
    commit_chunk,
    cursor_untrusted,
    discard,
    ids_of_chunk,
    ids_of_walk,
    max_walk_age_hours,
    unfinished_walk,
    walk_resume,
)
from fulfillment_assets.source import (
    API_KEY_SETTING,
    BASE_URL_SETTING,
    describe_fulfillment,
    fulfillment,
)
from fulfillment_assets.source.chunks import WalkPosition
from fulfillment_assets.warehouse.resource import Warehouse, described_pipeline
from fulfillment_assets.warehouse.run_liveness import RunLiveness

# Destinations whose text and JSON types cannot hold a NUL character.
NUL_REFUSING_DESTINATIONS = {"postgres"}


fulfillment_api = AssetSpec(
    key=API_ASSET_KEY,
    description=(
        f"The third-party fulfillment REST API: by default the seed's `GET "
        f"{settings.ENDPOINT_PATH}`, offset pages of {settings.PAGE_LIMIT}, API key in the "
        "`api_key` query parameter; another API's shape is configuration (`endpoint` and `auth` "
        "under [sources.fulfillment], in rest_api's keys), shown in force as `api_shape` on the "
        "raw table's latest materialization. Not materialized here; it is where the lineage "
        "starts."
    ),
    group_name=settings.ASSET_GROUP,
    kinds={"api"},
    owners=OWNERS,
    metadata={"endpoint": settings.ENDPOINT_PATH, "page_limit": settings.PAGE_LIMIT},
)

# Column hints dlt keeps that say something to a reader of the table; the rest (precision,
# x-normalizer, ...) are dlt's bookkeeping.
MEANINGFUL_HINTS = {
    "primary_key": "primary key",
    "merge_key": "merge key",
    "dedup_sort": "newest wins on merge",
}
# What the load info holds per load job, without the local path of its file.
LOAD_JOB_FIELDS = ("table_name", "file_format", "file_size", "state", "elapsed", "retry_count")


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


def readable_load_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A load's metadata as the raw table's page shows it: no local file paths (the `jobs` of
    dlt's load info), and the column schema with a description on every column."""
    readable = dict(metadata)
    # dagster-dlt hands them over as plain values; Dagster wraps them later.
    jobs = readable.pop("jobs", None)
    jobs = jobs.data if isinstance(jobs, JsonMetadataValue) else jobs
    if isinstance(jobs, list):
        readable["load_jobs"] = MetadataValue.json(
            [{field: job.get(field) for field in LOAD_JOB_FIELDS} for job in jobs]
        )
    schema = readable.get("dagster/column_schema")
    schema = schema.schema if isinstance(schema, TableSchemaMetadataValue) else schema
    if isinstance(schema, TableSchema):
        readable["dagster/column_schema"] = MetadataValue.table_schema(
            TableSchema(columns=[_described(column) for column in schema.columns])
        )
    return readable


def _described(column: TableColumn) -> TableColumn:
    constraints = column.constraints
    return TableColumn(
        name=column.name,
        type=column.type,
        description=column.description or column_description(column.name),
        constraints=TableColumnConstraints(
            nullable=constraints.nullable,
            unique=constraints.unique,
            other=[
                MEANINGFUL_HINTS[hint] for hint in constraints.other if hint in MEANINGFUL_HINTS
            ],
        ),
        tags=column.tags,
    )


def _without_library_objects(spec: AssetSpec) -> AssetSpec:
    """dagster-dlt puts its source, pipeline and translator objects in the specs' metadata (a
    fallback for `dlt.run`, which gets all three explicitly here); the UI could only show them as
    "(unserializable)". Removed before the asset is built: its outputs keep what the specs had."""
    library_objects = {META_KEY_SOURCE, META_KEY_PIPELINE, META_KEY_TRANSLATOR}
    return spec.replace_attributes(
        metadata={key: value for key, value in spec.metadata.items() if key not in library_objects}
    )


TRANSLATOR = FulfillmentTranslator()


def _loader_file_format(pipeline: Any) -> str | None:
    """Parquet where the destination takes it: Arrow pages then load without per-row work."""
    formats = pipeline.destination.capabilities().supported_loader_file_formats
    return "parquet" if "parquet" in formats else None


# `@dlt_assets` is `@multi_asset` over these specs; built here so the specs go without the
# library objects dagster-dlt adds to their metadata.
@multi_asset(
    specs=[
        _without_library_objects(spec)
        for spec in build_dlt_asset_specs(
            dlt_source=describe_fulfillment(),
            dlt_pipeline=described_pipeline(),
            dagster_dlt_translator=TRANSLATOR,
        )
    ],
    name=INGEST_STEP,
    can_subset=True,
    pool="fulfillment_ingest",
)
def fulfillment_dlt_assets(
    context: AssetExecutionContext,
    dlt: DagsterDltResource,
    warehouse: Warehouse,
    run_liveness: RunLiveness,
    config: IngestConfig,
) -> Iterator[Any]:
    """Loads the fulfillment API into the raw table; configuration is resolved per run.

    A full walk loads in chunks, each committed with where the walk stands (`walks.py`), and
    resumes an unfinished one; the raw table is materialized once, when the walk is whole. The
    walk's progress and retries are in the run's log while it runs; a failure is raised with the
    project's message first (`failures.py`)."""
    with library_lines_in_run_log(context.log):
        try:
            yield from _load(context, dlt, warehouse, config)
        except Failure:
            raise
        except Exception as error:
            raise readable_failure(error) from error


def _load(
    context: AssetExecutionContext,
    dlt: DagsterDltResource,
    warehouse: Warehouse,
    config: IngestConfig,
) -> Iterator[Any]:
    build = partial(
        _configured_source,
        # PostgreSQL stores no NUL character in text or JSON: such a page fails by name.
        text_without_nul=warehouse.destination_name() in NUL_REFUSING_DESTINATIONS,
    )
    # A missing setting fails here, before any wait for the pipeline.
    build(full_refresh=config.full_refresh, walk_resume=None)
    with warehouse.loading_pipeline(context.log) as pipeline:
        walk = unfinished_walk(
            warehouse,
            resume=config.resume,
            max_age_hours=max_walk_age_hours(),
            log=context.log,
        )
        # A dropped walk's chunks moved the incremental cursor: this walk is full, and sets it.
        full_refresh = config.full_refresh or (walk is None and cursor_untrusted(warehouse))
        committed = walk  # as the destination keeps it: what a later run resumes
        # The walk's ids so far, kept across this run's chunks: read from the destination only
        # when resuming, then each chunk's added (re-reading them all per chunk grows with it).
        seen_ids: set[Any] = ids_of_walk(warehouse, walk) if walk else set()
        while True:
            source = build(
                full_refresh=full_refresh,
                walk_resume=walk_resume(walk, seen_ids) if walk else None,
            )
            keep_newest(source, warehouse)
            try:
                results = list(
                    dlt.run(
                        context=context,
                        dlt_source=source,
                        dlt_pipeline=pipeline,
                        dagster_dlt_translator=TRANSLATOR,
                        loader_file_format=_loader_file_format(pipeline),
                    )
                )
            except BaseException:
                # A failure, or Dagster's interruption (SIGTERM: DagsterExecutionInterruptedError
                # is a BaseException): chunks of the walk are loaded, the asset page says so.
                if committed is not None:
                    observation = partial_walk_observation(committed)
                    context.log.warning(str(observation.metadata["walk_summary"].value))
                    yield observation
                raise
            position = chunk_loaded(context, pipeline, warehouse)
            if position is not None and not position.done:
                if position.load_ids:
                    seen_ids.update(
                        ids_of_chunk(warehouse, position.load_ids[-1], staged_table(pipeline))
                    )
                # The next chunk goes on right where this one ended: the overlap is for a run
                # that resumes the walk later, when the listing may have moved.
                committed, walk = position, dataclasses.replace(position, overlap=0)
                continue
            # What runs after the walk's last load, in this order: its deletes (against the rows
            # dlt staged for this load, or the ids its chunks kept), then the versions side table
            # brought up to date (which reads the same staged rows), then what the run reports
            # (reads only).
            marked = mark_deletes_of_walk(context, pipeline, warehouse, position)
            discard(warehouse)
            versions = update_versions_table(warehouse, pipeline)
            sync = sync_metadata(context, pipeline, warehouse, marked)
            stats = {**_table_stats(warehouse), **versions, **walk_progress(position)}
            for result in results:
                if isinstance(result, MaterializeResult):
                    metadata = project_fields_first({**sync, **stats}, result.metadata or {})
                    yield result._replace(metadata=readable_load_metadata(metadata))
                else:
                    yield result
            return


def _configured_source(
    *, full_refresh: bool, text_without_nul: bool, walk_resume: dict[str, Any] | None
) -> DltSource:
    try:
        return fulfillment(
            full_refresh=full_refresh, text_without_nul=text_without_nul, walk_resume=walk_resume
        )
    except ConfigFieldMissingException as missing:
        setting = API_KEY_SETTING if "api_key" in missing.fields else BASE_URL_SETTING
        raise Failure(f"the fulfillment source is not configured: set {setting}") from None


def chunk_loaded(
    context: AssetExecutionContext, pipeline: Any, warehouse: Warehouse
) -> WalkPosition | None:
    """After a chunk's load: where its walk stands now, committed with the chunk's ids unless
    the walk ended in its first chunk (None: an incremental walk, not chunked)."""
    position = walk_of_last_run(pipeline)
    if position is None:
        return None
    load_info = pipeline.last_trace.last_load_info if pipeline.last_trace else None
    if load_info and load_info.loads_ids:
        position.load_ids.append(load_info.loads_ids[-1])
        if not (position.done and position.chunks == 1):
            commit_chunk(warehouse, position, position.load_ids[-1], staged_table(pipeline))
    if not position.done:
        # Each chunk's load brings its rows: the versions side table follows them.
        update_versions_table(warehouse, pipeline)
        context.log.info(f"chunk loaded: {position.describe(position.ledger.get('last_total'))}")
    return position


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
        "null_customer_id_fraction": MetadataValue.float(share(null_customer, rows)),
        "null_order_status_fraction": MetadataValue.float(share(null_status, rows)),
    }
