"""Fields named after SQL keywords and constants are columns of the models, with their own values
(issue 23): the models' SQL quotes every column name it takes from the destination's schema."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from fulfillment_assets import settings
from fulfillment_assets.models.sql import rejected_select, validated_select
from fulfillment_assets.warehouse import sql
from fulfillment_assets_tests.fake_api import RecordsApi, serve_fake_api
from fulfillment_assets_tests.helpers import materialize_all, query

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


# PostgreSQL's reserved key words (the documentation's "reserved" column, pg_get_keywords()
# catcode 'R'), and its functions callable without parentheses.
POSTGRES_RESERVED = [
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case",
    "cast", "check", "collate", "column", "constraint", "create", "current_catalog",
    "current_date", "current_role", "current_time", "current_timestamp", "current_user",
    "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false", "fetch",
    "for", "foreign", "from", "grant", "group", "having", "in", "initially", "intersect", "into",
    "lateral", "leading", "limit", "localtime", "localtimestamp", "not", "null", "offset", "on",
    "only", "or", "order", "placing", "primary", "references", "returning", "select",
    "session_user", "some", "symmetric", "system_user", "table", "then", "to", "trailing",
    "true", "union", "unique", "user", "using", "variadic", "when", "where", "window", "with",
]  # fmt: skip


class KeywordFieldsApi(RecordsApi):
    """20 orders, each with a text field named after every reserved word and SQL constant of
    DuckDB and PostgreSQL, holding `api value of <name>`."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(
            [
                {
                    "id": n,
                    "customer_id": f"cus_{n}",
                    "order_status": "shipped",
                    **{name: f"api value of {name}" for name in names},
                }
                for n in range(1, 21)
            ]
        )


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.every_destination
def test_fields_named_after_every_dialects_keywords_load_and_reach_the_models(
    monkeypatch: pytest.MonkeyPatch, instance: DagsterInstance, isolated_environment: Path
) -> None:
    names = sorted(set(_hostile_names(duckdb.connect())) | set(POSTGRES_RESERVED))
    with serve_fake_api(KeywordFieldsApi(names), monkeypatch):
        result = materialize_all(instance)

    assert result.success
    quoted = ", ".join(f"min({sql.identifier(name)})" for name in names)
    for table in ("fulfillment_data", "orders_validated"):
        (row,) = query(isolated_environment, f"SELECT count(*), {quoted} FROM fulfillment.{table}")
        assert row == (20, *(f"api value of {name}" for name in names)), table
