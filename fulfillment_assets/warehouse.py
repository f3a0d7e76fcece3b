"""The destination: the dlt pipeline that loads it and a Dagster resource that queries it.

Checks and models run SQL through dlt's SQL client, so they work on whichever destination the
pipeline is configured for (DuckDB by default), with `%s` parameters.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import dlt
from dagster import ConfigurableResource

from fulfillment_assets import settings


def fulfillment_pipeline() -> dlt.Pipeline:
    """The pipeline that loads the fulfillment dataset; configuration is read when called."""
    name = settings.destination_name()
    destination: Any = name
    if name == "duckdb":
        settings.duckdb_path().parent.mkdir(parents=True, exist_ok=True)
        destination = dlt.destinations.duckdb(credentials=str(settings.duckdb_path()))
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

    def execute(self, statements: Sequence[str], *params: Any) -> None:
        """Runs statements in one transaction: a model is replaced whole or not at all."""
        with self.pipeline().sql_client() as client, client.begin_transaction():
            for statement in statements:
                names = {
                    name: client.make_qualified_table_name(name)
                    for name in _placeholders(statement)
                }
                client.execute_sql(statement.format(**names), *params)

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
