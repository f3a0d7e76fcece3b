"""The checks' and models' SQL, written once, renders for every destination
docs/configuration.md names and parses back in that dialect; identifiers follow each
destination's rules."""

from __future__ import annotations

import logging

import pytest
import sqlglot
from dagster import DagsterInstance

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer
from fulfillment_assets.models.sql import rejected_select, summary_select, validated_select
from fulfillment_assets.warehouse import sql
from fulfillment_assets_tests.helpers import TEST_API_KEY, materialize_all

DESTINATIONS = ("duckdb", "postgres", "snowflake", "bigquery")


def _dialect(destination: str) -> sql.Dialect:
    return sql.Dialect.of(destination, "fulfillment")


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_every_statement_of_a_full_run_renders_and_parses_for_every_destination(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Faults and a drift, so every rule and the variant columns' SQL are exercised; statuses
    # both learned (first run) and configured (second run).
    demo_api.configure(
        DemoApiOptions(
            records=300,
            api_key=TEST_API_KEY,
            missing_customer_id_ids=frozenset({3}),
            unknown_status_ids=frozenset({5}),
            customer_id_as_int_ids=frozenset({7}),
        )
    )
    with caplog.at_level(logging.DEBUG, logger="fulfillment_assets.warehouse.resource"):
        materialize_all(instance, raise_on_error=False)
        monkeypatch.setenv("FULFILLMENT_ACCEPTED_STATUSES", "pending,shipped")
        materialize_all(instance, raise_on_error=False)
    statements = {
        str(record.args[0])
        for record in caplog.records
        if isinstance(record.args, tuple)
        and record.name == "fulfillment_assets.warehouse.resource"
        and record.msg == "project SQL: %s"
    }
    assert len(statements) > 15, statements
    for statement in statements:
        for destination in DESTINATIONS:
            rendered = sql.render(statement, _dialect(destination))
            assert sqlglot.parse_one(rendered, read=destination), (destination, rendered)


@pytest.mark.parametrize("dialect_name", DESTINATIONS)
def test_models_render_for_every_destination_whatever_columns_the_api_sent(
    dialect_name: str,
) -> None:
    dialect = _dialect(dialect_name)
    full = {
        "id": "bigint",
        "customer_id": "text",
        "customer_id__v_bigint": "bigint",
        "order_status": "text",
        "created_at": "timestamp",
        "amount": "double",
        "_dlt_load_id": "text",
    }
    # An API of its own: no created_at, no amount, other fields.
    other = {"id": "bigint", "customer_id": "text", "order_status": "text", "warehouse": "text"}
    selects = [
        validated_select(full),
        rejected_select(full),
        validated_select(other),
        rejected_select(other),
        validated_select({}),
        rejected_select({}),
        summary_select(full, full),
        summary_select(other, other),
        summary_select({"created_at": "date", "amount": "text"}, {}),
    ]
    for select in selects:
        for statement in sql.replace_table("orders_validated", select, dialect):
            assert sqlglot.parse_one(statement, read=dialect.name), statement


def test_identifiers_follow_each_destinations_rules() -> None:
    statement = "SELECT count(customer_id) AS n FROM fulfillment_data WHERE order_status = 'x'"
    assert sql.render(statement, _dialect("snowflake")) == (
        'SELECT COUNT("CUSTOMER_ID") AS "N" FROM "FULFILLMENT"."FULFILLMENT_DATA" '
        "WHERE \"ORDER_STATUS\" = 'x'"
    )
    assert sql.render(statement, _dialect("bigquery")) == (
        "SELECT COUNT(`customer_id`) AS `n` FROM `fulfillment`.`fulfillment_data` "
        "WHERE `order_status` = 'x'"
    )


def test_no_duckdb_only_types_and_null_safe_reasons() -> None:
    rejected = rejected_select({"id": "bigint", "customer_id": "text", "order_status": "text"})
    postgres = sql.render(validated_select({}), _dialect("postgres"))
    assert "DOUBLE PRECISION" in postgres and "DOUBLE)" not in postgres
    bigquery = sql.render(rejected, _dialect("bigquery"))
    assert "FLOAT64" in sql.render(validated_select({}), _dialect("bigquery"))
    # No concat_ws (NULL on Snowflake if any part is NULL): each reason COALESCEd to ''.
    assert "CONCAT_WS" not in bigquery.upper() and "COALESCE(CASE WHEN" in bigquery


def test_table_replacement_each_destination_can_do_atomically() -> None:
    select = "SELECT id FROM fulfillment_data"
    assert [s.split(" ")[0] for s in sql.replace_table("t", select, _dialect("postgres"))] == [
        "DROP",
        "CREATE",
    ]
    for destination in ("snowflake", "bigquery"):
        (statement,) = sql.replace_table("t", select, _dialect(destination))
        assert statement.startswith("CREATE OR REPLACE TABLE"), statement


def test_values_are_escaped_literals() -> None:
    assert sql.literals(["it's", "a"]) == "'it''s', 'a'"


def test_a_rejection_reason_naming_a_type_from_the_schema_is_a_literal() -> None:
    # The reason of a drift rule names the variant column's type, read from the destination.
    rejected = rejected_select({"id": "bigint", "customer_id": "text", "customer_id__v_it's": "x"})

    literals = {node.this for node in sql.parse(rejected).find_all(sqlglot.exp.Literal)}
    assert "; customer_id is it's" in literals
