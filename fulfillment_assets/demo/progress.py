"""What the demo job prints while it runs: one line per step started, asset materialized and
step failed, and the warnings and errors the project's code logs, read off Dagster's events."""

from __future__ import annotations

import logging
import sys
from typing import Any

from dagster import DagsterEventType, InitLoggerContext, logger

SKIPPED_NOTICE = "Dependencies for step"


class StepLines(logging.Handler):
    """Formats the few Dagster events a person watching the terminal wants."""

    def emit(self, record: logging.LogRecord) -> None:
        # A logger that raises would fail the step it logs for: never.
        try:
            line = self.line(getattr(record, "dagster_event", None), record)
            if line:
                print(line, file=sys.stdout, flush=True)
        except Exception:
            self.handleError(record)

    @staticmethod
    def line(event: Any, record: logging.LogRecord) -> str | None:
        if event is None:
            # Log lines of the project's code and Dagster's: only what needs attention, without
            # Dagster's notice per step skipped after a failure (the summary has the failure).
            meta = getattr(record, "dagster_meta", None) or {}
            message = str(meta.get("orig_message") or record.getMessage())
            if record.levelno >= logging.WARNING and not message.startswith(SKIPPED_NOTICE):
                return f"  {record.levelname.lower()}: {message}"
            return None
        if event.event_type == DagsterEventType.STEP_START:
            # Steps of assets and checks are named after their key (fulfillment/...): the
            # prefix is the same for every one of them.
            return f"  step {(event.step_key or '').removeprefix('fulfillment__')} ..."
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            rows = event.step_materialization_data.materialization.metadata.get("dagster/row_count")
            count = f" ({rows.value:,} rows)" if rows is not None else ""
            return f"  materialized {event.asset_key.to_user_string()}{count}"
        if event.event_type == DagsterEventType.STEP_FAILURE:
            return f"  step {event.step_key} FAILED (details below)"
        return None


@logger(
    config_schema=None, description="Step starts, materializations and failures, one line each."
)
def step_logger(init_context: InitLoggerContext) -> logging.Logger:
    steps = logging.Logger("fulfillment_assets.demo_steps", level=logging.DEBUG)
    steps.addHandler(StepLines())
    return steps
