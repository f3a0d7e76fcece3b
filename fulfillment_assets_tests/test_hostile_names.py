"""Fields named after SQL keywords and constants are columns of the models, with their own values
(issue 23): the models' SQL quotes every column name it takes from the destination's schema."""

from __future__ import annotations

import duckdb

from fulfillment_assets import settings, sql
from fulfillment_assets.model_sql import rejected_select, validated_select

# SQL constants and functions callable without parentheses: unquoted, these read the session's
# values (today, the database role), not the column.
CONSTANTS = [
    "null", "true", "false", "current_date", "current_time", "current_timestamp",
    "current_user", "session_user", "user", "current_role", "current_catalog",
    "current_schema", "localtime", "localtimestamp",
]  # fmt: skip


def _hostile_names(connection: duckdb.DuckDBPyConnection) -> list[str]:
    reserved = connection.execute(
        "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category <> 'unreserved'"
    ).fetchall()
    names = {name for (name,) in reserved} | set(CONSTANTS)
    return sorted(names - {"id", "customer_id", "order_status"})


def test_fields_named_after_keywords_reach_the_models_with_their_own_values() -> None:
    connection = duckdb.connect()
    names = _hostile_names(connection)
    assert {"select", "from", "case", "where", "union", "null", "current_user"} <= set(names)
    connection.execute(f"CREATE SCHEMA {settings.DATASET_NAME}")
    columns = ["id", "customer_id", "order_status", *names]
    table = f"{settings.DATASET_NAME}.{settings.RESOURCE_NAME}"
    quoted = ", ".join(f"{sql.identifier(name)} TEXT" for name in columns[1:])
    connection.execute(f"CREATE TABLE {table} (id BIGINT, {quoted})")
    values = [1, "c-1", "shipped", *(f"api value of {name}" for name in names)]
    connection.execute(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in values)})", values)
    raw_columns = {name: "text" for name in columns} | {"id": "bigint"}
    dialect = sql.Dialect.of("duckdb", settings.DATASET_NAME)

    validated = connection.execute(sql.render(validated_select(raw_columns), dialect))
    assert [d[0] for d in validated.description] == columns
    assert validated.fetchall() == [tuple(values)]
    rejected = connection.execute(sql.render(rejected_select(raw_columns), dialect))
    assert rejected.fetchall() == []
