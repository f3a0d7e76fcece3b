"""The raw asset's run config (full refresh from the Launchpad) and what a sync reports.

The walk records its `last_run` (mode, cursor sent, records received) in the resource's dlt
state; dlt keeps the new cursor there too. After a complete full walk, the rows it did not
return are marked deleted (`deletes.py`). The raw table's page lists what the sync did first,
above dlt's own metadata (`project_fields_first`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dlt
from dagster import AssetExecutionContext, AssetObservation, Config, MetadataValue
from pydantic import Field

from fulfillment_assets import settings
from fulfillment_assets.contract import RAW_ASSET_KEY
from fulfillment_assets.settings import DELETED_AT
from fulfillment_assets.source import API_SHAPE
from fulfillment_assets.source.chunks import WalkPosition
from fulfillment_assets.source.completeness import WalkVerdict
from fulfillment_assets.source.incremental import (
    LAST_RUN,
    UPDATED_SINCE_SETTING,
    iso_utc,
    resource_state,
)
from fulfillment_assets.warehouse.resource import Warehouse


class IngestConfig(Config):
    """Run config of the raw asset, e.g. `full_refresh: true` in the Launchpad."""

    full_refresh: bool = Field(
        default=False,
        description=(
            "Walk every page without the incremental cursor, mark the orders the API no longer "
            "returns as deleted, and set the cursor anew. Schedules and sensors leave it off."
        ),
    )
    resume: bool = Field(
        default=True,
        description=(
            "Resume an unfinished full walk where its last committed chunk left it (false: "
            "forget it and walk afresh from offset 0)."
        ),
    )


def walk_metadata(context: AssetExecutionContext, last_run: dict[str, Any]) -> dict[str, Any]:
    """Whether the walk received every record the API listed (source/completeness.py); a walk
    that may have missed some says so in the run's log (and marked nothing deleted)."""
    verdict = WalkVerdict.from_state(last_run)
    if verdict is None:
        return {}
    if not verdict.complete:
        context.log.warning(verdict.explain())
    return {
        "walk_complete": MetadataValue.bool(verdict.complete),
        "walk_passes": MetadataValue.int(verdict.passes),
        "records_possibly_missing": MetadataValue.int(verdict.possibly_missing),
        "records_received_twice": MetadataValue.int(verdict.received_twice),
        "walk_summary": MetadataValue.text(verdict.explain()),
    }


def walk_of_last_run(pipeline: dlt.Pipeline) -> WalkPosition | None:
    """Where the full walk of the latest load stands (None: an incremental walk)."""
    walk = resource_state(pipeline).get(LAST_RUN, {}).get("walk")
    return WalkPosition.from_dict(walk) if walk else None


def walk_progress(walk: WalkPosition | None) -> dict[str, Any]:
    """Where a full walk in chunks stands: its id, pages and records done (and expected), chunks,
    runs, and the offset this run resumed it at."""
    if walk is None:
        return {}
    total = walk.ledger.get("last_total")
    metadata = {
        "walk_id": MetadataValue.text(walk.walk_id),
        "walk_status": MetadataValue.text("complete" if walk.done else "partial"),
        "walk_pages": MetadataValue.int(walk.pages),
        "walk_records": MetadataValue.int(walk.records),
        "walk_chunks": MetadataValue.int(walk.chunks),
        "walk_runs": MetadataValue.int(walk.runs),
        "walk_position": MetadataValue.text(walk.describe(total)),
    }
    if total is not None:
        metadata["walk_records_expected"] = MetadataValue.int(total)
    if walk.resumed_from is not None:
        metadata["walk_resumed_from_offset"] = MetadataValue.int(walk.resumed_from)
    return metadata


def sync_metadata(
    context: AssetExecutionContext, pipeline: dlt.Pipeline, warehouse: Warehouse, marked: int
) -> dict[str, Any]:
    """What the sync did, in the order the raw table's page shows it: mode, records received,
    the rows marked deleted (`marked` by this run, and in the table), the cursor, the walk's
    verdict, values read as their column's type. Reads only."""
    state = resource_state(pipeline)
    last_run = state.get(LAST_RUN, {})
    cursors: list[dict[str, Any]] = list(state.get("incremental", {}).values())
    new_cursor = cursors[0].get("last_value") if cursors else None
    metadata: dict[str, Any] = {
        "sync_mode": MetadataValue.text(str(last_run.get("mode", "full"))),
        "records_received": MetadataValue.int(int(last_run.get("records_received", 0))),
        **deletes_metadata(warehouse, marked, complete_walk=bool(last_run.get("complete_walk"))),
        "cursor_sent": MetadataValue.text(last_run.get("cursor_sent") or "none"),
        "new_cursor": MetadataValue.text(iso_utc(new_cursor) if new_cursor else "none"),
        "records_without_cursor": MetadataValue.int(int(last_run.get("records_without_cursor", 0))),
    }
    older = int(last_run.get("records_older_than_cursor", 0))
    metadata["records_older_than_cursor"] = MetadataValue.int(older)
    if older:
        context.log.warning(
            f"the API returned {older} records older than the cursor sent: it seems to ignore "
            f"the parameter set in {UPDATED_SINCE_SETTING}. They were filtered out and the load "
            "is correct, but every run still walks every page."
        )
    metadata.update(walk_metadata(context, last_run))
    # Values read as their column's type from another form (numeric text, ISO-8601 forms,
    # epoch numbers), per column: see source/values.py.
    metadata["values_read_as_type"] = MetadataValue.json(state.get("values_read_as_type", {}))
    shape = state.get(API_SHAPE)
    if shape:
        # The API's shape in force (source/shape.py: the endpoint and auth settings), no secret;
        # and whether the walk read pages ahead or went page by page, and why.
        metadata["api_shape"] = MetadataValue.json(shape)
        metadata["walk_fetch"] = MetadataValue.text(str(shape.get("walk", "")))
    return metadata


def deletes_metadata(warehouse: Warehouse, marked: int, *, complete_walk: bool) -> dict[str, Any]:
    """The rows this run marked deleted, the rows of the table marked deleted by any run, and a
    sentence that tells the two apart (both are counts of rows marked deleted)."""
    metadata: dict[str, Any] = {"rows_marked_deleted": MetadataValue.int(marked)}
    if DELETED_AT not in warehouse.columns(settings.RESOURCE_NAME):
        return metadata  # nothing loaded yet: no table to count in
    ((in_table,),) = warehouse.query(
        f"SELECT count(*) FROM {settings.RESOURCE_NAME} WHERE {DELETED_AT} IS NOT NULL"
    )
    metadata["rows_marked_deleted_in_table"] = MetadataValue.int(in_table)
    if marked:
        this_run = (
            f"this run marked {marked} rows deleted: orders its complete full walk no longer "
            "found at the API"
        )
    elif complete_walk:
        this_run = "this run marked none: its complete full walk found no order newly gone"
    else:
        this_run = "this run marked none: only a complete full walk marks deletes"
    metadata["deletes_summary"] = MetadataValue.text(
        f"{this_run} (rows_marked_deleted). The table holds {in_table} rows marked deleted in "
        f"all, by this run and earlier ones (rows_marked_deleted_in_table): {DELETED_AT} set, "
        "kept in the raw table, left out of the models."
    )
    return metadata


def project_fields_first(
    ours: Mapping[str, Any], dlt_metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """The raw table's materialization metadata: the project's fields first, in their order, then
    dlt's (load times, destination, jobs), which the page would otherwise list above them.
    Dagster keeps the order; where both name a field (`dagster/row_count`), the project's wins."""
    return {**ours, **{key: value for key, value in dlt_metadata.items() if key not in ours}}


def partial_walk_observation(walk: WalkPosition) -> AssetObservation:
    """What the raw table holds when a run stops inside a walk: the chunks loaded so far. An
    observation, not a materialization: the table is not whole, and freshness must not take it
    for a refresh."""
    summary = (
        f"a full walk is partly loaded: {walk.describe(walk.ledger.get('last_total'))}; the next "
        f"run resumes it at offset {max(walk.offset - walk.overlap, 0)}"
    )
    return AssetObservation(
        asset_key=RAW_ASSET_KEY,
        metadata={**walk_progress(walk), "walk_summary": MetadataValue.text(summary)},
    )
