"""Newest `updated_at` wins across loads: an older version of a record never replaces a newer one.

dlt's delete-insert merge replaces a stored row with whatever a load brings for its `id`, and
`dedup_sort` orders only the copies within one load. Across loads, dlt's `source_filter` merge
option (a condition on the loaded rows: the others are discarded, neither deleting nor inserting)
keeps a record out of the merge when a newer version of it is already stored.

The filter cannot look at the raw table itself: dlt deletes the matched rows before it inserts,
so the newer row would be gone when the insert asks. It reads a compact side table instead,
`fulfillment_data_versions` (`version_id`, `newest_updated_at`, `version_load_id`): the
`updated_at` of every stored row, brought up to date from the raw table's rows of loads it has
not seen yet (by `_dlt_load_id`, so the cost follows the rows of those loads) before each load
and after it. Its column names differ from the raw table's, so the filter's bare `id` and
`updated_at` are the loaded row's.

Ties: across loads, an equal `updated_at` is not older, so the later load wins, every time.
Within one load dlt keeps one copy per id ordered by `updated_at` descending only (dlt has no
secondary sort): of copies with equal `updated_at`, which one is kept is the database's choice.
A record without `updated_at` cannot be ordered: it is merged as it arrives.
"""

from __future__ import annotations

from typing import Any

from dagster import MetadataValue
from dlt.extract.source import DltSource

from fulfillment_assets import settings
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.sql import literal, literals, render

RAW = settings.RESOURCE_NAME
VERSIONS = f"{settings.RESOURCE_NAME}_versions"
# Materialization metadata of the raw table that `updated_at_never_goes_back` reports.
DISCARDED_COUNT = "older_versions_discarded"
DISCARDED_SAMPLE = "older_versions_discarded_sample"

# True for a loaded row whose id has a newer version stored (a NULL on either side is not older).
_OLDER_THAN_STORED = (
    f"EXISTS (SELECT 1 FROM {VERSIONS} AS stored WHERE stored.version_id = id "
    "AND stored.newest_updated_at > updated_at)"
)


def keep_newest(source: DltSource, warehouse: Warehouse) -> None:
    """Makes the load's merge skip records older than the stored version of their id.

    Nothing is stored before the first load: that one merges as dlt always does, and
    `update_versions_table` then creates the side table.
    """
    if not warehouse.columns(RAW):
        return
    _bring_up_to_date(warehouse)
    source_filter = render(f"NOT {_OLDER_THAN_STORED}", warehouse.dialect())
    source.resources[RAW].apply_hints(
        write_disposition={
            "disposition": "merge",
            "strategy": "delete-insert",
            "source_filter": source_filter,
        }
    )


def update_versions_table(warehouse: Warehouse, pipeline: Any) -> dict[str, Any]:
    """After a load: how many records it brought older than the stored version (discarded by
    the merge), a sample of them, and the side table brought up to date."""
    trace = pipeline.last_trace
    load_ids = list(trace.last_load_info.loads_ids) if trace and trace.last_load_info else []
    loaded = trace.last_normalize_info.row_counts.get(RAW, 0) if trace else 0
    discarded: list[tuple[Any, ...]] = []
    count = 0
    if load_ids and loaded and _exists(warehouse):
        # The load's rows as dlt staged them, before the merge discarded the older ones.
        staged = staged_table(pipeline)
        older = (
            f"FROM {staged} AS arrived JOIN {VERSIONS} AS stored "
            "ON stored.version_id = arrived.id "
            f"WHERE arrived.{settings.LOAD_ID} IN ({literals(load_ids)}) "
            "AND stored.newest_updated_at > arrived.updated_at"
        )
        ((count,),) = warehouse.query(f"SELECT count(*) {older}")
        discarded = warehouse.query(
            "SELECT arrived.id, CAST(arrived.updated_at AS TEXT), "
            f"CAST(stored.newest_updated_at AS TEXT) {older} ORDER BY arrived.id "
            f"LIMIT {settings.SAMPLE_IDS}"
        )
    if warehouse.columns(RAW):
        _bring_up_to_date(warehouse)
    return {
        DISCARDED_COUNT: MetadataValue.int(int(count)),
        DISCARDED_SAMPLE: MetadataValue.json(
            [
                {"id": row_id, "arrived_updated_at": arrived, "stored_updated_at": stored}
                for row_id, arrived, stored in discarded
            ]
        ),
    }


def _exists(warehouse: Warehouse) -> bool:
    return bool(warehouse.columns(VERSIONS))


def staged_table(pipeline: Any) -> str:
    """The table where dlt staged the last merge's rows, all of them, including those the merge
    then discarded (`fulfillment_staging.fulfillment_data` by default)."""
    layout = pipeline.destination_client().config.staging_dataset_name_layout
    dataset = layout % pipeline.dataset_name if "%s" in layout else layout
    return f"{dataset}.{RAW}"


def _bring_up_to_date(warehouse: Warehouse) -> None:
    """The side table holds the `updated_at` of every raw row of the loads it has seen.

    Created (from the whole raw table) on first use; then only rows of later loads are read.
    """
    # `id` is an integer or text, as the raw table holds it (settings.ID_TYPES).
    id_type = "TEXT" if warehouse.columns(RAW).get("id") == "text" else "BIGINT"
    warehouse.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSIONS} "
        f"(version_id {id_type}, newest_updated_at TIMESTAMPTZ, version_load_id TEXT)"
    )
    ((seen,),) = warehouse.query(f"SELECT max(version_load_id) FROM {VERSIONS}")
    newer_rows = f"FROM {RAW} WHERE {settings.LOAD_ID} > {literal(seen or '')}"
    insert = f"INSERT INTO {VERSIONS} SELECT id, updated_at, {settings.LOAD_ID} {newer_rows}"
    if seen is None:  # created just now, empty: nothing to replace
        warehouse.execute(insert)
        return
    # The raw row of an id holds its newest version (the merge keeps older ones out).
    replaced = f"DELETE FROM {VERSIONS} WHERE version_id IN (SELECT id {newer_rows})"
    warehouse.execute(replaced, insert)
