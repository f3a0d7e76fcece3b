"""Where an unfinished full walk stands, kept in the destination, so the next run resumes it.

The source walks one chunk per load (`source/chunks.py`). After each chunk's load, in one
transaction: the ids the chunk received (as dlt staged them, the merge's discarded ones
included) go into `fulfillment_walk_ids`, and the walk's position replaces the one row of
`fulfillment_walks`. A run killed between dlt's commit and this one resumes from the chunk
before: the position never runs ahead of the ids, and the repeat is harmless (merge on `id`).

A walk that ends in its first chunk needs neither table: the in-memory ledger judged it whole,
and its deletes read the one load's staged rows, as they always did.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import dlt
from dagster import Failure

from fulfillment_assets import settings
from fulfillment_assets.source.chunks import WalkPosition
from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets.warehouse.sql import literal

WALKS = f"{settings.RESOURCE_NAME}_walks"
WALK_IDS = f"{settings.RESOURCE_NAME}_walk_ids"
MAX_WALK_AGE_SETTING = "SOURCES__FULFILLMENT__MAX_WALK_AGE_HOURS"


def max_walk_age_hours() -> float:
    """SOURCES__FULFILLMENT__MAX_WALK_AGE_HOURS (or `max_walk_age_hours` under
    [sources.fulfillment]): an unfinished walk older than this is not resumed."""
    value: Any = dlt.config.get(f"sources.{settings.SOURCE_NAME}.max_walk_age_hours")
    if value is None:
        return settings.MAX_WALK_AGE_HOURS
    try:
        hours = float(value)
    except (TypeError, ValueError):
        hours = -1.0
    if not hours > 0:
        raise Failure(f"{MAX_WALK_AGE_SETTING} is {value!r}: expected a number of hours above 0")
    return hours


def walk_in_progress(warehouse: Warehouse) -> WalkPosition | None:
    """The unfinished walk the raw table holds chunks of, if any (reads only)."""
    if not warehouse.columns(WALKS):
        return None
    rows = warehouse.query(f"SELECT position FROM {WALKS}")
    walk = WalkPosition.from_dict(json.loads(rows[0][0])) if rows else None
    return walk if walk is not None and not walk.done else None


def unfinished_walk(
    warehouse: Warehouse, *, resume: bool, max_age_hours: float, log: logging.Logger
) -> WalkPosition | None:
    """The unfinished walk this run resumes, or None: there is none, the run asked for a fresh
    walk, or it is too old to trust (then it is forgotten, and the run says so)."""
    if not warehouse.columns(WALKS):
        return None
    rows = warehouse.query(f"SELECT position FROM {WALKS}")
    if not rows:
        return None
    walk = WalkPosition.from_dict(json.loads(rows[0][0]))
    reason = None
    if walk.done:
        # Its last chunk was loaded but the run ended before its deletes: the next complete
        # walk marks them; its load is kept.
        reason = "had ended, but its run stopped before marking deletes"
    elif not resume:
        reason = "is not resumed: the run's config says `resume: false`"
    elif walk.age_hours() > max_age_hours:
        reason = (
            f"started {walk.age_hours():.0f} h ago, more than {MAX_WALK_AGE_SETTING}="
            f"{max_age_hours:g}: the listing has moved too much to trust"
        )
    elif walk.dropped:
        log.warning(
            f"{walk.describe()} was dropped unfinished by an earlier run; a new full walk starts "
            "from offset 0"
        )
        return None
    if reason is not None:
        log.warning(f"{walk.describe()} {reason}; a new full walk starts from offset 0")
        if walk.done:
            discard(warehouse)
        else:
            drop(warehouse, walk)
        return None
    walk.runs += 1
    walk.resumed_from = max(walk.offset - walk.overlap, 0)
    log.info(f"resuming {walk.describe()}")
    return walk


def drop(warehouse: Warehouse, walk: WalkPosition) -> None:
    """Forgets an unfinished walk's ids but keeps its row, marked dropped, until a new walk
    commits a chunk or completes. dlt stored the incremental cursor with each of its chunks (as
    new as the records they received): an incremental run from it would never load the records
    the walk did not reach, so every run walks in full while the row says so
    (`cursor_untrusted`), a run killed before its first chunk's commit included."""
    walk.dropped = True
    warehouse.execute(
        f"DELETE FROM {WALK_IDS}",
        f"UPDATE {WALKS} SET position = {literal(json.dumps(walk.as_dict()))}",
    )


def cursor_untrusted(warehouse: Warehouse) -> bool:
    """Whether dlt's incremental cursor may have been moved by a walk that never completed:
    the destination holds an unfinished walk this run does not resume (a dropped one)."""
    return walk_in_progress(warehouse) is not None


def walk_resume(walk: WalkPosition, seen_ids: set[Any]) -> dict[str, Any]:
    """The source's `walk_resume`: the position, and every id the walk received before."""
    return {**walk.as_dict(), "seen_ids": seen_ids}


def ids_of_walk(warehouse: Warehouse, walk: WalkPosition) -> set[Any]:
    """Every id the walk received over its committed chunks, as the destination keeps them: read
    once, by a run that resumes the walk (within a run, `ids_of_chunk` adds each chunk's)."""
    return {row_id for (row_id,) in warehouse.query(returned_ids(walk.walk_id))}


def ids_of_chunk(warehouse: Warehouse, load_id: str, staged_table: str) -> list[Any]:
    """The ids the chunk just loaded received, as `commit_chunk` copied them."""
    rows = warehouse.query(f"SELECT id FROM {staged_table} WHERE _dlt_load_id = {literal(load_id)}")
    return [row_id for (row_id,) in rows]


def commit_chunk(warehouse: Warehouse, walk: WalkPosition, load_id: str, staged_table: str) -> None:
    """After a chunk's load: its ids and the walk's new position, in one transaction."""
    # `id` is an integer or text, as the raw table holds it (settings.ID_TYPES).
    id_type = "TEXT" if warehouse.columns(settings.RESOURCE_NAME).get("id") == "text" else "BIGINT"
    warehouse.execute(
        f"CREATE TABLE IF NOT EXISTS {WALKS} (walk_id TEXT, position TEXT, updated_at TIMESTAMPTZ)"
    )
    warehouse.execute(f"CREATE TABLE IF NOT EXISTS {WALK_IDS} (walk_id TEXT, id {id_type})")
    warehouse.execute(
        f"DELETE FROM {WALK_IDS} WHERE walk_id <> {literal(walk.walk_id)}",
        f"INSERT INTO {WALK_IDS} SELECT {literal(walk.walk_id)}, id FROM {staged_table} "
        f"WHERE {settings.LOAD_ID} = {literal(load_id)}",
        f"DELETE FROM {WALKS}",
        f"INSERT INTO {WALKS} VALUES ({literal(walk.walk_id)}, "
        f"{literal(json.dumps(walk.as_dict()))}, CURRENT_TIMESTAMP)",
    )


def returned_ids(walk_id: str) -> str:
    """The ids a walk in chunks received, over all its chunks and runs (a subquery)."""
    return f"SELECT id FROM {WALK_IDS} WHERE walk_id = {literal(walk_id)}"


def discard(warehouse: Warehouse) -> None:
    """Forgets the walk: a finished one (its deletes marked) or one not to resume."""
    if warehouse.columns(WALKS):
        warehouse.execute(f"DELETE FROM {WALKS}")
    if warehouse.columns(WALK_IDS):
        warehouse.execute(f"DELETE FROM {WALK_IDS}")
