"""Incremental sync with dlt's own cursor, and what each walk reports.

With `updated_since_param` set, the resource carries a `dlt.sources.incremental` on the cursor
field. It sits on the Arrow batches dlt extracts (not on the inner rest_api resource, whose state
dlt keeps under another source), so dlt filters and takes the max with `pyarrow.compute`, and its
state is stored in the destination with each completed load only: a failed or killed run never
advances the cursor, and a wiped local dir restores it from there. `lag` (the lookback) re-reads
late updates; the merge keeps one row per `id`.

A run walks everything, without the parameter, when incremental mode is off, when there is no
cursor yet, or on a full refresh (which also resets the cursor to the walk's max). Each walk
records `last_run` in the resource's state: the mode, the cursor sent, the records received.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.storages.exceptions import CurrentLoadPackageStateNotAvailable
from dlt.extract.items import DataItemWithMeta
from dlt.extract.resource import DltResource

from fulfillment_assets import settings
from fulfillment_assets.display import shown_id
from fulfillment_assets.settings import DELETED_AT, LOAD_ID
from fulfillment_assets.source.chunks import WalkTracker
from fulfillment_assets.source.completeness import WalkLedger
from fulfillment_assets.source.http import FulfillmentPageError
from fulfillment_assets.source.values import TIMESTAMP, to_timestamps

UPDATED_SINCE_SETTING = "SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM"
CURSOR_FIELD_SETTING = "SOURCES__FULFILLMENT__CURSOR_FIELD"
LOOKBACK_SETTING = "SOURCES__FULFILLMENT__LOOKBACK_SECONDS"
LAST_RUN = "last_run"


def iso_utc(value: dt.datetime) -> str:
    """A cursor as the parameter's value: ISO-8601 in UTC, whole seconds (rounded down: the
    filter then starts a little earlier, never later)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cursor_hints(columns: dict[str, Any], cursor_field: str) -> dict[str, Any]:
    """The table's column hints with the cursor typed as a timestamp whose newest value wins a
    merge, and `_deleted_at` declared (so every merged row gets it written, NULL when returned)."""
    columns = {name: dict(hints) for name, hints in columns.items()}
    for hints in columns.values():
        hints.pop("dedup_sort", None)
    columns[cursor_field] = {
        **columns.get(cursor_field, {"nullable": True}),
        "data_type": "timestamp",
        "dedup_sort": "desc",
    }
    columns[DELETED_AT] = {"data_type": "timestamp", "nullable": True}
    return columns


def _bad_cursor(batch: pa.Table, column: pa.ChunkedArray, field: str) -> FulfillmentPageError:
    position = pc.indices_nonzero(pc.is_valid(column))[0].as_py()
    record_id = batch.column("id")[position].as_py() if "id" in batch.column_names else None
    value = column[position].as_py()
    return FulfillmentPageError(
        f"record id {shown_id(record_id)!r}: {field} {str(value)[:40]!r} is not an ISO-8601 "
        "timestamp, so it cannot be the incremental cursor; nothing was loaded. Fix the record in "
        "the API, or set "
        f"{CURSOR_FIELD_SETTING} to a timestamp field (or unset {UPDATED_SINCE_SETTING} for full "
        "syncs)"
    )


def with_cursor(batch: pa.Table, field: str, zone: str = "UTC") -> pa.Table:
    """The batch with its cursor column as UTC timestamps, null where a record has none (dlt
    refuses a batch without the column). Text in any ISO-8601 form is read (a time without an
    offset in the API's `zone`, see values.py); a value that is no timestamp fails, naming the
    record."""
    for name in batch.column_names:
        if name.startswith(f"{field}__v_") and batch.column(name).null_count < batch.num_rows:
            raise _bad_cursor(batch, batch.column(name), field)
    if field not in batch.column_names:
        return batch.append_column(field, pa.nulls(batch.num_rows, TIMESTAMP))
    column = batch.column(field)
    if column.type == TIMESTAMP:
        return batch
    if pa.types.is_timestamp(column.type):
        typed = column.cast(TIMESTAMP)
    elif pa.types.is_string(column.type):
        typed, unparsed = to_timestamps(column.combine_chunks(), zone)
        if unparsed:
            positions = pa.array(range(batch.num_rows))
            bad = pc.is_in(positions, value_set=pa.array(unparsed, positions.type))
            raise _bad_cursor(batch, pc.if_else(bad, column, None), field)
    else:
        raise _bad_cursor(batch, column, field)
    return batch.set_column(batch.column_names.index(field), field, typed)


def arrow_of(batch: Any) -> pa.Table | None:
    """A batch's Arrow table, plain or carrying dlt hints (`dlt.mark.with_hints`: JSON or
    collision columns); None for a plain row."""
    data = batch.data if isinstance(batch, DataItemWithMeta) else batch
    return data if isinstance(data, pa.Table) else None


def with_arrow(batch: Any, table: pa.Table) -> Any:
    """The batch with `table` in place of its Arrow table, keeping its hints."""
    return DataItemWithMeta(batch.meta, table) if isinstance(batch, DataItemWithMeta) else table


def with_load_columns(batch: Any) -> Any:
    """An Arrow batch with the columns every raw row carries besides the API's fields.

    - `_deleted_at`, all NULL: every record the API returns exists (`ingest/deletes.py` marks the
      others after a full walk);
    - `_dlt_load_id`, the load this batch belongs to: the checks, deletes and newest-version
      tracking read it. dlt adds it to plain rows by itself, to Arrow batches only with
      `add_dlt_load_id` in `.dlt/config.toml`, which dlt reads only when run from the project's
      directory; with that setting dlt replaces it by the same value.

    In this order, the table's: dlt's normalize step then imports the extracted parquet as it
    is instead of rewriting it to reorder columns (2.4 s at 1,000,000 records).
    """
    table = arrow_of(batch)
    if table is None:
        return batch
    # An API field of the same name was renamed by `arrow.colliding_fields`: these are ours.
    if DELETED_AT not in table.column_names:
        table = table.append_column(DELETED_AT, pa.nulls(table.num_rows, TIMESTAMP))
    if LOAD_ID not in table.column_names:
        try:
            load_id = dlt.current.load_package_state()["load_id"]
        except CurrentLoadPackageStateNotAvailable:
            # Iterated outside a pipeline (a test, a notebook): no load to name.
            return with_arrow(batch, table)
        column = pa.array([load_id] * table.num_rows, pa.string())
        table = table.append_column(pa.field(LOAD_ID, pa.string(), nullable=False), column)
    return with_arrow(batch, table)


def fulfillment_resource(
    walk: Callable[[dict[str, str]], Iterable[pa.Table | dict]],
    hints: dict[str, Any],
    *,
    updated_since_param: str | None,
    cursor_field: str,
    lookback_seconds: int,
    full_refresh: bool,
    api_timezone: str = "UTC",
    ledger: WalkLedger | None = None,
    tracker: WalkTracker | None = None,
    resuming: bool = False,
) -> DltResource:
    """The raw resource: `walk(params)` yields the pages' batches; with `updated_since_param`
    set, dlt's incremental cursor decides the parameter and filters what an API ignoring it
    returns. `ledger` judges whether the walk was complete (without one, it is taken as such);
    `tracker` holds where a full walk in chunks stands (`chunks.py`); `resuming` one is full."""
    name = hints.pop("name")
    hints = {**hints, "columns": cursor_hints(hints.get("columns", {}), cursor_field)}
    tracker = tracker or WalkTracker()

    def report(*, full: bool, **last_run: Any) -> None:
        """The walk's `last_run`: only a full walk the ledger found complete marks deletes, once
        its last chunk is loaded; a chunk before it reports where the walk stands."""
        walk = tracker.position
        if walk is not None and not walk.done:
            judged: dict[str, Any] = {"walk_complete": False}
        else:
            judged = ledger.verdict().as_state() if ledger else {"walk_complete": True}
        dlt.current.resource_state()[LAST_RUN] = {
            **last_run,
            **judged,
            "complete_walk": full and bool(judged["walk_complete"]),
            "walk": walk.as_dict() if walk is not None else None,
        }

    if not updated_since_param:

        def full_walk() -> Iterator[pa.Table | dict]:
            received = 0
            for batch in walk({}):
                table = arrow_of(batch)
                received += table.num_rows if table is not None else 1
                yield with_load_columns(batch)
            report(full=True, mode="full", cursor_sent=None, records_received=received)

        return dlt.resource(full_walk, name=name, **hints)()

    cursor_default: dlt.sources.incremental[dt.datetime] = dlt.sources.incremental(
        cursor_field, lag=float(lookback_seconds), on_cursor_value_missing="include"
    )

    def cursor_walk(
        cursor: dlt.sources.incremental[dt.datetime] = cursor_default,
    ) -> Iterator[pa.Table]:
        # A resumed walk is a full one whatever cursor its earlier chunks left.
        full = full_refresh or resuming or cursor.start_value is None
        state = cursor.get_state()
        if full:  # walk and keep everything; dlt stores this walk's max as the new cursor
            state["last_value"] = state["start_value"] = None
            state["unique_hashes"] = []
            cursor.start_value = None
        start = None if full else cursor.start_value
        since = None if start is None else iso_utc(start)
        received = missing = older = 0
        newest: dt.datetime | None = None
        for batch in walk({updated_since_param: since} if since else {}):
            table = arrow_of(batch)
            if table is None:  # a plain row (arrow_batch_rows = 0)
                table = batch = pa.Table.from_pylist([batch])
            table = with_cursor(table, cursor_field, api_timezone)
            column = table.column(cursor_field)
            received += table.num_rows
            missing += column.null_count
            if start is not None:
                older += pc.sum(pc.less(column, pa.scalar(start, TIMESTAMP))).as_py() or 0
            batch_newest = pc.max(column).as_py()
            if batch_newest is not None and (newest is None or batch_newest > newest):
                newest = batch_newest
            yield with_load_columns(with_arrow(batch, table))
        position = tracker.position
        if position is not None:
            newest = _newest(newest, position.cursor_max)
            position.cursor_max = newest.isoformat() if newest else None
            if position.done and newest is not None:
                # The cursor is the whole walk's newest, not its last chunk's: set only by a
                # completed walk (each chunk before stored its own, which a resumed walk ignores).
                state["last_value"] = newest
        report(
            full=full,
            mode="full" if full else "incremental",
            cursor_sent=since,
            records_received=received,
            records_without_cursor=missing,
            records_older_than_cursor=older,
        )

    return dlt.resource(cursor_walk, name=name, **hints)()


def _newest(received: dt.datetime | None, stored: str | None) -> dt.datetime | None:
    """The newer of this chunk's newest cursor value and the walk's before it."""
    before = dt.datetime.fromisoformat(stored) if stored else None
    if received is None or before is None:
        return received or before
    return max(received, before)


def resource_state(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """The raw resource's dlt state as the pipeline keeps it after a run: what the source wrote
    to `dlt.current.resource_state()` (`last_run` here, the API shape and the coerced types)."""
    sources = pipeline.state.get("sources", {})
    resources = sources.get(settings.SOURCE_NAME, {}).get("resources", {})
    return resources.get(settings.RESOURCE_NAME, {})
