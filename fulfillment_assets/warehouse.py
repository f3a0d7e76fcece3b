"""The destination: the dlt pipeline that loads it and a Dagster resource that queries it.

Checks and models run SQL through dlt's SQL client, so they work on whichever destination the
pipeline is configured for (DuckDB by default), with `%s` parameters.
"""

from __future__ import annotations

import functools
import json
import logging
import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dlt
import filelock
from dagster import ConfigurableResource, InitResourceContext
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from fulfillment_assets import settings
from fulfillment_assets.run_liveness import fail_dead_runs, hold_run_liveness

logger = logging.getLogger(__name__)


def fulfillment_destination() -> Any:
    """The configured destination; DuckDB (a file under the data dir) unless configured."""
    name = settings.destination_name()
    if name != "duckdb":
        return name
    settings.duckdb_path().parent.mkdir(parents=True, exist_ok=True)
    credentials = DuckDbCredentials(
        str(settings.duckdb_path()),
        # DuckDB's default is 80% of RAM: the merge of a large load would take it. Capped, it
        # spills to disk instead and the run's memory stays flat in the size of the load.
        global_config={
            "memory_limit": settings.duckdb_memory_limit(),
            "preserve_insertion_order": False,
        },
    )
    return dlt.destinations.duckdb(credentials=credentials)


def fulfillment_pipeline(pipelines_dir: str | None = None) -> dlt.Pipeline:
    """The pipeline that loads the fulfillment dataset; configuration is read when called.

    Build it only under `Warehouse.loading_pipeline()`: dlt wipes a working dir it finds without
    state, and a load's has none for a moment as it starts (dagster-dlt drops the local state
    before every run). Readers use `Warehouse.dataset()`, Dagster's definitions
    `described_pipeline()`; neither touches this working dir.
    """
    # Each row records the load that last wrote it, Arrow pages included (dlt adds it to rows by
    # default): the checks tell duplicates the API sent in the latest load from older rows.
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    return dlt.pipeline(
        pipeline_name=settings.PIPELINE_NAME,
        pipelines_dir=pipelines_dir or str(settings.pipelines_dir()),
        destination=fulfillment_destination(),
        dataset_name=settings.DATASET_NAME,
    )


@functools.cache
def described_pipeline() -> dlt.Pipeline:
    """The pipeline as Dagster's definitions describe it (names, destination), when code loads.

    Every process that loads the code (webserver, daemon, each run) builds one. Its working dir
    is a temporary one of that process: loading code neither creates nor wipes the working dir
    of the loads.
    """
    return fulfillment_pipeline(pipelines_dir=_process_pipelines_dir().name)


@functools.cache
def _process_pipelines_dir() -> tempfile.TemporaryDirectory[str]:
    # Removed when the process exits.
    return tempfile.TemporaryDirectory(prefix="fulfillment-described-pipeline-")


class Warehouse(ConfigurableResource):
    """Runs SQL in the fulfillment dataset of the configured destination."""

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[Warehouse]:
        """Every run of the project uses the warehouse: while it does, its process holds a
        liveness lock, and runs whose process died before it are marked failed first."""
        if context.run_id is None or context.instance is None:
            yield self
            return
        fail_dead_runs(context.instance, context.log)
        with hold_run_liveness(context.run_id):
            yield self

    @contextmanager
    def loading_pipeline(self, log: logging.Logger | None = None) -> Iterator[dlt.Pipeline]:
        """The loading pipeline, for one load at a time on this machine (waits for a running one).

        The `fulfillment_ingest` pool keeps ingestion runs apart in Dagster, but on the default
        SQLite storage two runs that reach the step in the same instant can both get the slot,
        and a load started outside Dagster does not ask. A second load would wipe the first's
        working dir, so a file lock next to it decides.
        """
        settings.pipelines_dir().mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(settings.pipelines_dir() / f"{settings.PIPELINE_NAME}.lock")
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            (log or logger).info("another load of the fulfillment pipeline runs: waiting for it")
            lock.acquire()
        try:
            yield fulfillment_pipeline()
        finally:
            lock.release()

    def dataset(self) -> dlt.Dataset:
        """The dataset, for reading and modelling without the pipeline's working dir."""
        schema = dlt.Schema(settings.SOURCE_NAME)  # given, so dlt does not look it up first
        return dlt.dataset(fulfillment_destination(), settings.DATASET_NAME, schema=schema)

    def table(self, name: str) -> str:
        """The fully qualified, quoted name of a table in the fulfillment dataset."""
        with self.dataset().sql_client as client:
            return client.make_qualified_table_name(name)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one statement; `{table_name}` placeholders are qualified table names."""
        with self.dataset().sql_client as client:
            names = {name: client.make_qualified_table_name(name) for name in _placeholders(sql)}
            return list(client.execute_sql(sql.format(**names), *params) or [])

    def replace_table(self, table: str, select: str, *params: Any) -> None:
        """(Re)creates `table` from `select`; DROP + CREATE in one transaction, which every SQL
        destination supports, so a reader never sees it half-built."""
        with self.dataset().sql_client as client:
            target = client.make_qualified_table_name(table)
            names = {name: client.make_qualified_table_name(name) for name in _placeholders(select)}
            with client.begin_transaction():
                client.execute_sql(f"DROP TABLE IF EXISTS {target}")
                client.execute_sql(f"CREATE TABLE {target} AS {select.format(**names)}", *params)

    def stored_schema(self) -> dict[str, Any]:
        """The dlt schema as last stored in the destination (`_dlt_version`), or {} if none."""
        with self.dataset().destination_client as client:
            stored = client.get_stored_schema(settings.SOURCE_NAME)  # type: ignore[attr-defined]
        return json.loads(stored.schema) if stored else {}

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> SQL type as the destination reports it; empty if the table is absent."""
        with self.dataset().sql_client as client:
            rows = client.execute_sql(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                client.dataset_name,
                table,
            )
            return {name: data_type for name, data_type in rows or []}


def _placeholders(sql: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(sql) if field}
