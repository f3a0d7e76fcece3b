"""The library code's log lines in the run's event log while the load runs.

The source imports no Dagster: it logs on Python loggers under `fulfillment_assets` (the walk's
progress and each retry at INFO, every few seconds; warnings such as a page asked again). For the
length of the ingest step they are written to the run's event log too, so the run page and the
terminal of `dg dev` show a load moving and waiting, not only its start and end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import DagsterLogManager

# The package's logger: the source's, the warehouse's and the progress lines are below it.
LIBRARY_LOGGER = "fulfillment_assets"


class RunLogHandler(logging.Handler):
    """Writes each record to the run's event log at its level. Pages are fetched by worker
    threads: one record at a time goes to Dagster."""

    def __init__(self, run_log: DagsterLogManager) -> None:
        super().__init__(level=logging.INFO)
        self.run_log = run_log
        self._one_at_a_time = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        # A log line that cannot be written must not fail the load it reports on.
        try:
            with self._one_at_a_time:
                self.run_log.log(record.levelno, record.getMessage())
        except Exception:
            self.handleError(record)


@contextmanager
def library_lines_in_run_log(run_log: DagsterLogManager) -> Iterator[None]:
    """For the block's length: the package's INFO and above in the run's event log."""
    library = logging.getLogger(LIBRARY_LOGGER)
    handler = RunLogHandler(run_log)
    level = library.level
    # Without a level of its own the package's logger takes the root's (WARNING): no progress.
    if level == logging.NOTSET or level > logging.INFO:
        library.setLevel(logging.INFO)
    library.addHandler(handler)
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(level)
