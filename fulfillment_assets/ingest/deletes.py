"""Orders the API no longer returns: marked with `_deleted_at` after a complete full walk.

After a full walk's merge (dlt's delete-insert), every row the walk returned carries this load's
`_dlt_load_id` and a NULL `_deleted_at` (the column is declared, so the merge writes it). The rows
with another load id were not returned: they get this run's time, once (the first run that
noticed keeps its time). Nothing is removed: the raw table keeps them; the models leave them out.
An incremental walk returns only what changed, so it never marks anything.

`mark_deletes_of_walk` is the write the raw asset runs after a walk's last load, before the
versions side table is brought up to date (`versions.update_versions_table`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dlt
from dagster import AssetExecutionContext, Failure

from fulfillment_assets import settings
from fulfillment_assets.ingest.versions import staged_table
from fulfillment_assets.ingest.walks import returned_ids
from fulfillment_assets.settings import DELETED_AT
from fulfillment_assets.source.chunks import WalkPosition
from fulfillment_assets.source.incremental import LAST_RUN, resource_state
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.sql import literal, literals

MAX_DELETE_FRACTION_SETTING = "SOURCES__FULFILLMENT__MAX_DELETE_FRACTION"
DEFAULT_MAX_DELETE_FRACTION = 0.5


def max_delete_fraction() -> float:
    """SOURCES__FULFILLMENT__MAX_DELETE_FRACTION (or `max_delete_fraction` under
    [sources.fulfillment]): the most of the table one walk may mark deleted."""
    value: Any = dlt.config.get(f"sources.{settings.SOURCE_NAME}.max_delete_fraction")
    if value is None:
        return DEFAULT_MAX_DELETE_FRACTION
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        fraction = -1.0
    if not 0 <= fraction <= 1:
        raise Failure(f"{MAX_DELETE_FRACTION_SETTING} is {value!r}: expected a number from 0 to 1")
    return fraction


def not_deleted(raw_columns: dict[str, str]) -> str:
    """The condition for rows the API still returns (every row, before the column exists)."""
    return f"{DELETED_AT} IS NULL" if DELETED_AT in raw_columns else "TRUE"


def mark_deleted(
    warehouse: Warehouse, load_ids: list[str], noticed_at: dt.datetime, returned_ids: str
) -> tuple[int, int]:
    """Marks the rows a complete walk did not return; (marked, table rows).

    `load_ids` are the walk's loads (one, or one per chunk); `returned_ids` a subquery of every id
    the walk received: the load's staged rows, or the walk's ids over its chunks
    (`walks.py`). A row the walk returned in an older version than the stored one keeps its
    older load id (the merge kept the newer row, `versions.py`), but it was returned.

    Fails, marking none, if that would be more than the allowed fraction of the table: an API
    that suddenly returns a partial list must not empty the models."""
    table = settings.RESOURCE_NAME
    limit = max_delete_fraction()
    older = f"{settings.LOAD_ID} NOT IN ({literals(load_ids)}) AND {DELETED_AT} IS NULL"
    unmarked = f"{older} AND id NOT IN ({returned_ids})"
    ((rows, candidates),) = warehouse.query(
        f"SELECT count(*), count(*) FILTER (WHERE {older}) FROM {table}"
    )
    if not candidates:
        # Every row was written by this load (a first load, or a full walk that returned every
        # record): nothing to compare with the staged ids, which would cost a pass over them.
        return 0, rows
    ((to_mark,),) = warehouse.query(f"SELECT count(*) FROM {table} WHERE {unmarked}")
    if rows and to_mark / rows > limit:
        raise Failure(
            f"the full walk would mark {to_mark} of the {rows} rows of {settings.DATASET_NAME}."
            f"{table} as deleted ({to_mark / rows:.0%}), more than "
            f"{MAX_DELETE_FRACTION_SETTING}={limit} of the table: marked none (the "
            "load itself is kept). If the API really dropped them, raise the setting and run a "
            "full refresh; otherwise check the API."
        )
    if to_mark:
        stamp = noticed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        warehouse.execute(
            f"UPDATE {table} SET {DELETED_AT} = CAST({literal(stamp)} AS TIMESTAMPTZ) "
            f"WHERE {unmarked}"
        )
    return to_mark, rows


def _run_started_at(context: AssetExecutionContext) -> dt.datetime:
    record = context.instance.get_run_record_by_id(context.run.run_id)
    started = record.start_time if record else None
    return dt.datetime.fromtimestamp(started, dt.UTC) if started else dt.datetime.now(dt.UTC)


def mark_deletes_of_walk(
    context: AssetExecutionContext,
    pipeline: dlt.Pipeline,
    warehouse: Warehouse,
    walk: WalkPosition | None,
) -> int:
    """After a walk's last load: the rows a complete full walk did not return marked deleted
    (`mark_deleted`); how many. Any other walk marks nothing. A walk of one chunk is judged by its
    load's staged rows; one of several by the ids its chunks kept (`walks.py`)."""
    last_run = resource_state(pipeline).get(LAST_RUN, {})
    if not last_run.get("complete_walk") or not warehouse.columns(settings.RESOURCE_NAME):
        return 0
    load_info = pipeline.last_trace.last_load_info if pipeline.last_trace else None
    if not load_info or not load_info.loads_ids:
        return 0
    load_id = load_info.loads_ids[-1]
    if walk is not None and walk.chunks > 1:
        load_ids, returned = walk.load_ids, returned_ids(walk.walk_id)
    else:
        staged = staged_table(pipeline)
        load_ids, returned = (
            [load_id],
            f"SELECT id FROM {staged} WHERE {settings.LOAD_ID} = {literal(load_id)}",
        )
    marked, _ = mark_deleted(warehouse, load_ids, _run_started_at(context), returned)
    return marked
