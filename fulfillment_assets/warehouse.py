"""The destination: the dlt pipeline that loads it and a Dagster resource that queries it.

Checks and models run SQL through dlt's SQL client, so they work on whichever destination the
pipeline is configured for (DuckDB by default), with `%s` parameters.
"""

from __future__ import annotations

import json
import string
from typing import Any

import dlt
from dagster import ConfigurableResource
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from fulfillment_assets import settings


def fulfillment_pipeline() -> dlt.Pipeline:
    """The pipeline that loads the fulfillment dataset; configuration is read when called."""
    # Each row records the load that last wrote it, Arrow pages included (dlt adds it to rows by
    # default): the checks tell duplicates the API sent in the latest load from older rows.
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    name = settings.destination_name()
    destination: Any = name
    if name == "duckdb":
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
        destination = dlt.destinations.duckdb(credentials=credentials)
    return dlt.pipeline(
        pipeline_name=settings.PIPELINE_NAME,
        pipelines_dir=str(settings.pipelines_dir()),
        destination=destination,
        dataset_name=settings.DATASET_NAME,
    )


class Warehouse(ConfigurableResource):
    """Runs SQL in the fulfillment dataset of the configured destination."""

    def pipeline(self) -> dlt.Pipeline:
        return fulfillment_pipeline()

    def table(self, name: str) -> str:
        """The fully qualified, quoted name of a table in the fulfillment dataset."""
        with self.pipeline().sql_client() as client:
            return client.make_qualified_table_name(name)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one statement; `{table_name}` placeholders are qualified table names."""
        with self.pipeline().sql_client() as client:
            names = {name: client.make_qualified_table_name(name) for name in _placeholders(sql)}
            return list(client.execute_sql(sql.format(**names), *params) or [])

    def replace_table(self, table: str, select: str, *params: Any) -> None:
        """(Re)creates `table` from `select`; DROP + CREATE in one transaction, which every SQL
        destination supports, so a reader never sees it half-built."""
        with self.pipeline().sql_client() as client:
            target = client.make_qualified_table_name(table)
            names = {name: client.make_qualified_table_name(name) for name in _placeholders(select)}
            with client.begin_transaction():
                client.execute_sql(f"DROP TABLE IF EXISTS {target}")
                client.execute_sql(f"CREATE TABLE {target} AS {select.format(**names)}", *params)

    def stored_schema(self) -> dict[str, Any]:
        """The dlt schema as last stored in the destination (`_dlt_version`), or {} if none."""
        pipeline = self.pipeline()
        with pipeline.destination_client() as client:
            stored = client.get_stored_schema(settings.SOURCE_NAME)
        return json.loads(stored.schema) if stored else {}

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> SQL type as the destination reports it; empty if the table is absent."""
        with self.pipeline().sql_client() as client:
            rows = client.execute_sql(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                client.dataset_name,
                table,
            )
            return {name: data_type for name, data_type in rows or []}


def _placeholders(sql: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(sql) if field}
