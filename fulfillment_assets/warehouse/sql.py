"""SQL written once, in DuckDB's dialect, and rendered for the destination's with sqlglot.

The project's checks and models write plain SQL: bare table names of the fulfillment dataset,
column names as dlt's naming convention makes them, values inlined with `literal()`. `render()`
qualifies every table, folds and quotes every identifier by the destination's rules (Snowflake
upper-cases, BigQuery quotes with backticks) and translates types and functions (DOUBLE, TEXT,
AT TIME ZONE, FILTER ...) into the destination's dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlglot
from dlt.common.destination import Destination
from sqlglot import exp

# The dialect the project's SQL is written in.
SOURCE_DIALECT = "duckdb"
# dlt reports transactional DDL for Snowflake, but each DDL statement there commits on its own.
DDL_COMMITS_IMPLICITLY = {"snowflake"}


@dataclass(frozen=True)
class Dialect:
    """How one destination wants its SQL: sqlglot dialect, identifier case, table paths."""

    name: str
    casefold: Callable[[str], str]
    # Table name -> its path (catalog, dataset, table), each part already case-folded.
    table_path: Callable[[str], list[str]]
    # DDL inside a transaction (DuckDB, PostgreSQL); else CREATE OR REPLACE (BigQuery).
    ddl_in_transaction: bool

    @classmethod
    def of(cls, destination_name: str, dataset_name: str) -> Dialect:
        """The dialect of a dlt destination by name, without connecting (catalog omitted)."""
        destination = Destination.from_reference(destination_name)
        assert destination is not None  # None only for a None reference
        caps = destination.capabilities()

        def table_path(table: str) -> list[str]:
            return [caps.casefold_identifier(dataset_name), caps.casefold_identifier(table)]

        return cls(
            name=caps.sqlglot_dialect or destination_name,
            casefold=caps.casefold_identifier,
            table_path=table_path,
            ddl_in_transaction=transactional_ddl(caps),
        )


def transactional_ddl(caps: Any) -> bool:
    """Whether DROP + CREATE in one transaction is atomic on a destination of these capabilities."""
    return caps.supports_ddl_transactions and caps.sqlglot_dialect not in DDL_COMMITS_IMPLICITLY


def literal(value: Any) -> str:
    """A value as an SQL literal, escaped (the statements carry no driver parameters)."""
    return exp.convert(value).sql(dialect=SOURCE_DIALECT)


def identifier(name: str) -> str:
    """A column name as a quoted identifier of the project's dialect: an API field named
    `select`, `null` or `current_user` is a column, never a keyword or an SQL constant."""
    return exp.to_identifier(name, quoted=True).sql(dialect=SOURCE_DIALECT)


def literals(values: Iterable[Any]) -> str:
    """Values as a comma-separated list of literals, e.g. for `IN (...)`."""
    return ", ".join(literal(value) for value in values)


def parse(sql: str) -> exp.Expr:
    """One statement of the project's SQL."""
    return sqlglot.parse_one(sql, read=SOURCE_DIALECT)


def render(sql: str | exp.Expr, dialect: Dialect) -> str:
    """The statement in the destination's dialect: tables qualified, identifiers folded."""
    tree = parse(sql) if isinstance(sql, str) else sql.copy()

    def adapt(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and not node.args.get("db"):
            *catalog, db, table = dialect.table_path(node.name)
            qualified = exp.table_(table, db=db, catalog=catalog[0] if catalog else None)
            if node.alias:
                qualified.set(
                    "alias", exp.TableAlias(this=exp.to_identifier(dialect.casefold(node.alias)))
                )
            return qualified
        if isinstance(node, exp.Identifier):
            return exp.to_identifier(dialect.casefold(node.name))
        return node

    return tree.transform(adapt).sql(dialect=dialect.name, identify=True)


def replace_table(table: str, select: str, dialect: Dialect) -> list[str]:
    """Statements that (re)create `table` from `select` so no reader sees it half-built.

    Run them in one transaction where the destination has transactional DDL (DuckDB,
    PostgreSQL); elsewhere the single CREATE OR REPLACE TABLE is atomic (BigQuery, Snowflake).
    """
    query = parse(select)
    if dialect.ddl_in_transaction:
        return [
            render(f"DROP TABLE IF EXISTS {table}", dialect),
            render(exp.Create(this=exp.to_table(table), kind="TABLE", expression=query), dialect),
        ]
    create = exp.Create(this=exp.to_table(table), kind="TABLE", replace=True, expression=query)
    return [render(create, dialect)]
