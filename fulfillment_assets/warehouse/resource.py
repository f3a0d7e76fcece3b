"""The destination: the dlt pipeline that loads it and a Dagster resource that queries it.

Checks and models write their SQL once (`sql.py`); the `Warehouse` renders it for the configured
destination's dialect and identifier rules and runs it through dlt's SQL client.
"""

from __future__ import annotations

import functools
import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dlt
from dagster import ConfigurableResource, EnvVar, Failure
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.destination import Destination
from dlt.common.destination.configuration import ParquetFormatConfiguration
from dlt.common.destination.exceptions import UnknownDestinationModule
from pydantic import Field

from fulfillment_assets import settings
from fulfillment_assets.warehouse import duckdb_file, locks, sql
from fulfillment_assets.warehouse.sql import Dialect

logger = logging.getLogger(__name__)


def fulfillment_destination(
    name: str | None = None, duckdb_path: str | None = None, duckdb_memory_limit: str | None = None
) -> Any:
    """The configured destination; DuckDB (a file under the data dir) unless configured.
    Arguments left None are read from the environment (see settings.py)."""
    name = name or settings.destination_name()
    if name != "duckdb":
        try:
            return Destination.from_reference(name)
        except UnknownDestinationModule:
            raise Failure(
                f"FULFILLMENT_DESTINATION={name!r} is not a dlt destination: set it to duckdb "
                "(the default), postgres, snowflake, bigquery or another dlt destination, or "
                f"configure a named one (DESTINATION__{name.upper()}__DESTINATION_TYPE)"
            ) from None
    return dlt.destinations.duckdb(
        credentials=duckdb_file.credentials(duckdb_path, duckdb_memory_limit),
        # The load files stay on this machine, read once by DuckDB: compressing them costs
        # CPU and saves nothing worth it (~1 s of 43 at 1,000,000 records). Cloud warehouses,
        # which upload them, keep dlt's default (snappy). `[data_writer] compression` set to
        # another codec than snappy (e.g. zstd) wins.
        parquet_format=ParquetFormatConfiguration(compression="none"),
    )


def fulfillment_pipeline(pipelines_dir: str | None = None, destination: Any = None) -> dlt.Pipeline:
    """The pipeline that loads the fulfillment dataset; configuration is read when called.

    Build it only under `Warehouse.loading_pipeline()`: dlt wipes a working dir it finds without
    state, and a load's has none for a moment as it starts (dagster-dlt drops the local state
    before every run). Readers use `Warehouse.dataset()`, Dagster's definitions
    `described_pipeline()`; neither touches this working dir. dlt's own settings for it are in
    `.dlt/config.toml`, read from the working directory; none is needed for correct loads.
    """
    pipeline = dlt.pipeline(
        pipeline_name=settings.PIPELINE_NAME,
        pipelines_dir=pipelines_dir or str(settings.pipelines_dir()),
        destination=destination or fulfillment_destination(),
        dataset_name=settings.DATASET_NAME,
    )
    # dlt takes SIGTERM / SIGINT over while it normalizes and loads, and forgets one that came
    # after its last check when the step ends: a walk in chunks (a load each) then went on to the
    # end after a deploy's SIGTERM. Dagster's own handler stops the run instead; the chunks
    # already committed stay, as after a SIGKILL (test_resumable_walks_killed.py).
    pipeline.runtime_config.intercept_signals = False
    return pipeline


def _check_credentials(pipeline: dlt.Pipeline, name: str) -> None:
    """Fails before any API request when the destination's credentials are not configured."""
    try:
        pipeline.destination_client()  # resolves the configuration; connects to nothing
    except ConfigFieldMissingException as missing:
        raise Failure(
            f"the {name} destination (FULFILLMENT_DESTINATION) is missing "
            f"{', '.join(missing.fields)}: set DESTINATION__{name.upper()}__CREDENTIALS (e.g. a "
            f"connection string) or [destination.{name}.credentials] in .dlt/secrets.toml"
        ) from None


@functools.cache
def described_pipeline() -> dlt.Pipeline:
    """The pipeline as Dagster's definitions describe it (names, destination), when code loads.

    Every process that loads the code (webserver, daemon, each run) builds one. Its working dir
    is a temporary one of that process: loading code neither creates nor wipes the working dir
    of the loads. A misconfigured destination must not stop the code location from loading: the
    runs fail instead, naming the setting.
    """
    try:
        return fulfillment_pipeline(pipelines_dir=_process_pipelines_dir().name)
    except Failure:
        return dlt.pipeline(
            pipeline_name=settings.PIPELINE_NAME,
            pipelines_dir=_process_pipelines_dir().name,
            dataset_name=settings.DATASET_NAME,
        )


@functools.cache
def _process_pipelines_dir() -> tempfile.TemporaryDirectory[str]:
    # Removed when the process exits.
    return tempfile.TemporaryDirectory(prefix="fulfillment-described-pipeline-")


# What `Warehouse.as_configured()` gave each field from the environment when the code location
# loaded: the value the UI shows. A field still holding it is not an override: it follows the
# environment when a run starts, as an empty one does. In a deployment each run's process loads
# the code location in the same environment, so the run reads the value shown; a process that
# changes its environment after loading it (the tests do, per test) gets what it changed.
_SHOWN_FROM_ENVIRONMENT: dict[str, str] = {}


class Warehouse(ConfigurableResource):
    """Runs SQL in the fulfillment dataset of the configured destination.

    Its fields show in the UI's Resources tab: the code location sets them to what the
    environment gives when it loads (`as_configured`), so the destination and the DuckDB file in
    use are visible there. Each is read from the environment again when a run starts
    (docs/configuration.md); a value set here or in a run's config other than the one shown
    wins.
    """

    destination: str | None = Field(
        default=None,
        description="dlt destination: FULFILLMENT_DESTINATION, default duckdb.",
    )
    duckdb_path: str | None = Field(
        default=None,
        description="DuckDB file: DESTINATION__DUCKDB__CREDENTIALS (shown by name), default "
        "$FULFILLMENT_DATA_DIR/warehouse.duckdb.",
    )
    duckdb_memory_limit: str | None = Field(
        default=None,
        description="DuckDB's memory cap: FULFILLMENT_DUCKDB_MEMORY_LIMIT, default 128MB.",
    )

    @classmethod
    def as_configured(cls) -> Warehouse:
        """The warehouse with its fields as the environment sets them now, for the UI to show.

        DESTINATION__DUCKDB__CREDENTIALS is a dlt credentials setting: shown by its name (an
        `EnvVar`, resolved when a run starts), never its value. Nothing here needs a secret;
        the DuckDB fields are left empty for another destination.
        """
        shown = {"destination": settings.destination_name()}
        duckdb_path: str | None = None
        if shown["destination"] == "duckdb":
            shown["duckdb_memory_limit"] = settings.duckdb_memory_limit()
            if settings.duckdb_credentials_set():
                duckdb_path = EnvVar(settings.DUCKDB_CREDENTIALS)
            else:
                shown["duckdb_path"] = duckdb_path = str(settings.duckdb_path())
        _SHOWN_FROM_ENVIRONMENT.clear()
        _SHOWN_FROM_ENVIRONMENT.update(shown)
        return cls(
            destination=shown["destination"],
            duckdb_path=duckdb_path,
            duckdb_memory_limit=shown.get("duckdb_memory_limit"),
        )

    def _set_here(self, field: str) -> str | None:
        """A field's value if it overrides the environment; None if it follows it (empty, still
        what `as_configured` gave it from the environment, or the name of the variable, which a
        run resolves to the variable's value)."""
        value: str | None = getattr(self, field)
        if isinstance(value, EnvVar) or value == _SHOWN_FROM_ENVIRONMENT.get(field):
            return None
        return value

    def destination_name(self) -> str:
        """The destination this resource uses."""
        return self._set_here("destination") or settings.destination_name()

    def _destination(self) -> Any:
        return fulfillment_destination(
            self._set_here("destination"),
            self._set_here("duckdb_path"),
            self._set_here("duckdb_memory_limit"),
        )

    def _errors_explained(self) -> Any:
        return duckdb_file.clear_errors(self._set_here("duckdb_memory_limit"))

    @contextmanager
    def loading_pipeline(self, log: logging.Logger | None = None) -> Iterator[dlt.Pipeline]:
        """The loading pipeline, for one load at a time on this machine (waits for a running one).

        The `fulfillment_ingest` pool keeps ingestion runs apart in Dagster, but on the default
        SQLite storage two runs that reach the step in the same instant can both get the slot,
        and a load started outside Dagster does not ask. A second load would wipe the first's
        working dir, so a file lock next to it decides.
        """
        settings.pipelines_dir().mkdir(parents=True, exist_ok=True)
        lock = locks.machine_lock(str(settings.pipelines_dir() / f"{settings.PIPELINE_NAME}.lock"))
        locks.acquire(lock, "the fulfillment pipeline (another load runs)", log or logger)
        try:
            with self._errors_explained():
                pipeline = fulfillment_pipeline(destination=self._destination())
                _check_credentials(pipeline, self.destination_name())
                yield pipeline
        finally:
            lock.release()

    def dataset(self) -> dlt.Dataset:
        """The dataset, for reading and modelling without the pipeline's working dir."""
        schema = dlt.Schema(settings.SOURCE_NAME)  # given, so dlt does not look it up first
        return dlt.dataset(self._destination(), settings.DATASET_NAME, schema=schema)

    @contextmanager
    def _sql_client(self) -> Iterator[Any]:
        with (
            self._errors_explained(),
            self.dataset().sql_client as client,
        ):
            yield client

    @contextmanager
    def _job_client(self) -> Iterator[Any]:
        with (
            self._errors_explained(),
            self.dataset().destination_client as client,
        ):
            yield client

    def _dialect(self, client: Any) -> Dialect:
        caps = client.capabilities
        return Dialect(
            name=caps.sqlglot_dialect or self.destination_name(),
            casefold=caps.casefold_identifier,
            table_path=lambda table: client.make_qualified_table_name_path(table, quote=False),
            ddl_in_transaction=sql.transactional_ddl(caps),
        )

    def dialect(self) -> Dialect:
        """The configured destination's SQL dialect and identifier rules."""
        with self._sql_client() as client:
            return self._dialect(client)

    def table(self, name: str) -> str:
        """The fully qualified, quoted name of a table in the fulfillment dataset."""
        with self._sql_client() as client:
            return client.make_qualified_table_name(name)

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        """Rows of one statement of the project's SQL (see `fulfillment_assets.warehouse.sql`)."""
        with self._sql_client() as client:
            rendered = sql.render(statement, self._dialect(client))
            logger.debug("project SQL: %s", statement)
            return [tuple(row) for row in client.execute_sql(rendered) or []]

    def execute(self, *statements: str) -> None:
        """Runs statements of the project's SQL in one transaction."""
        with self._sql_client() as client:
            dialect = self._dialect(client)
            rendered = [sql.render(statement, dialect) for statement in statements]
            for statement in statements:
                logger.debug("project SQL: %s", statement)
            with client.begin_transaction():
                for statement in rendered:
                    client.execute_sql(statement)

    def replace_table(self, table: str, select: str) -> None:
        """(Re)creates `table` from `select`; a reader never sees it half-built (see
        `sql.replace_table`)."""
        with self._sql_client() as client:
            statements = sql.replace_table(table, select, self._dialect(client))
            logger.debug("project SQL: %s", select)
            if len(statements) == 1:
                client.execute_sql(statements[0])
                return
            with client.begin_transaction():
                for statement in statements:
                    client.execute_sql(statement)

    def stored_schema(self) -> dict[str, Any]:
        """The dlt schema as last stored in the destination (`_dlt_version`), or {} if none."""
        with self._job_client() as client:
            stored = client.get_stored_schema(settings.SOURCE_NAME)
        return json.loads(stored.schema) if stored else {}

    def columns(self, table: str) -> dict[str, str]:
        """Column name (as dlt names it) -> dlt data type; empty if the table is absent.

        Read through dlt's job client, which folds names by the destination's rules to look them
        up in its information_schema (Snowflake stores them upper-case).
        """
        with self._job_client() as client:
            _, storage = client.get_storage_table(table)
            casefold = client.capabilities.casefold_identifier
        return {
            _dlt_name(name, casefold): str(column.get("data_type"))
            for name, column in storage.items()
        }


def _dlt_name(stored: str, casefold: Any) -> str:
    """The dlt (snake_case, lower-case) name of a column as the destination stores it."""
    return stored.lower() if casefold(stored.lower()) == stored else stored
