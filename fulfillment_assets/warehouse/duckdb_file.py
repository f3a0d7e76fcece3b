"""The DuckDB file: one process at a time, and its errors in words that say what to do.

DuckDB lets one process open a file at a time; a second one fails at once ("Could not set lock
on file"). Every connection the project opens (dlt's loads, the checks' and models' queries)
holds a file lock next to the DuckDB file instead, so the project's processes wait for each
other. A process outside the project holding the file still gets DuckDB's error, translated.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import Failure
from dlt.common.configuration import configspec, resolve_configuration
from dlt.destinations.impl.duckdb.configuration import DuckDbConnectionPool, DuckDbCredentials

from fulfillment_assets import settings
from fulfillment_assets.display import causes
from fulfillment_assets.warehouse import locks
from fulfillment_assets.warehouse.locks import machine_lock

logger = logging.getLogger(__name__)


def credentials(path: str | None = None, memory_limit: str | None = None) -> DuckDbCredentials:
    """Credentials of the DuckDB file (default: under the data dir), resolved (dlt keeps them as
    they are)."""
    file = Path(path or settings.duckdb_path())
    file.parent.mkdir(parents=True, exist_ok=True)
    configured = OneProcessAtATimeCredentials(
        str(file),
        # DuckDB's default is 80% of RAM: the merge of a large load would take it. Capped, it
        # spills to disk instead and the run's memory stays flat in the size of the load.
        global_config={
            "memory_limit": memory_limit or settings.duckdb_memory_limit(),
            "preserve_insertion_order": False,
        },
    )
    return resolve_configuration(configured)


class OneProcessAtATimeConnectionPool(DuckDbConnectionPool):
    """Holds a file lock next to the DuckDB file while a connection of this process is open.

    DuckDB lets one process open a file at a time; a second one fails at once ("Could not set
    lock on file"). With this pool, the project's processes wait for each other instead: a check
    of one run waits while another run's load writes the file, and that load waits for the check.
    """

    def borrow_conn(self, *args: Any, **kwargs: Any) -> Any:
        lock = machine_lock(f"{self.credentials.database}.lock")
        locks.acquire(lock, f"the DuckDB file {self.credentials.database}", logger)
        try:
            return super().borrow_conn(*args, **kwargs)
        except BaseException:
            lock.release()
            raise

    def return_conn(self, borrowed_conn: Any) -> int:
        try:
            return super().return_conn(borrowed_conn)
        finally:
            machine_lock(f"{self.credentials.database}.lock").release()


@configspec(init=False)
class OneProcessAtATimeCredentials(DuckDbCredentials):
    """DuckDB credentials whose connections wait for other processes of the project."""

    def on_resolved(self) -> None:
        super().on_resolved()
        self.conn_pool = OneProcessAtATimeConnectionPool(self)


_DUCKDB_LOCKED = re.compile(r"Could not set lock on file \"?([^\"]+?)\"?: Conflicting lock")


@contextmanager
def clear_errors(memory_limit: str | None = None) -> Iterator[None]:
    """DuckDB's file-lock and memory errors with their cause and fix, not dlt's generic text."""
    try:
        yield
    except Exception as error:  # translated or re-raised as is
        # The chain's first ten messages: DuckDB's text sits under dlt's wrappers.
        text = "\n".join(str(cause) for cause in itertools.islice(causes(error), 10))
        locked = _DUCKDB_LOCKED.search(text)
        if locked or "Could not set lock on file" in text:
            path = locked.group(1) if locked else str(settings.duckdb_path())
            holder = re.search(r"\(PID (\d+)\)", text)
            raise Failure(
                f"the DuckDB file {path} is locked by another process"
                f"{f' (PID {holder.group(1)})' if holder else ''}: a DuckDB file takes one "
                "writer at a time. Wait for that process (another run, a notebook or the duckdb "
                "CLI holding the file open) to finish or close it, or point this run at another "
                "file with DESTINATION__DUCKDB__CREDENTIALS / FULFILLMENT_DATA_DIR."
            ) from None
        if "Out of Memory Error" in text:
            cap = memory_limit or settings.duckdb_memory_limit()
            raise Failure(
                f"DuckDB ran out of its memory cap ({cap}): raise "
                "FULFILLMENT_DUCKDB_MEMORY_LIMIT (e.g. 1GB), or lower the API's page size."
            ) from error
        raise
