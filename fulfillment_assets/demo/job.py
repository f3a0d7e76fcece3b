"""The main job on one machine: demo API up, every asset materialized into DuckDB, a summary.

    python -m fulfillment_assets.demo.job [--records N] [--verbose] [--api-fault STATUS]

Quiet by default: a line per step and per materialized asset, the load's progress (pages,
records, rate, ETA) and today's summary. `--verbose` brings back Dagster's event log (DEBUG) and
the libraries' warnings. The run goes to the Dagster instance in DAGSTER_HOME (default:
./dagster_home), so `dg dev` afterwards shows it with its checks and metadata.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import warnings
from pathlib import Path
from typing import Any

from fulfillment_assets import settings
from fulfillment_assets.automation.errors import error_chain, readable_cause
from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer
from fulfillment_assets.demo_api.summary import served_summary

# The source logs its page walk here at INFO (pages, records, rate, ETA).
PROGRESS_LOGGER = "fulfillment_assets.progress"


def build_parser() -> argparse.ArgumentParser:
    """The command line of `scripts/demo.sh` (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000, help="records the demo API serves")
    parser.add_argument(
        "--verbose", action="store_true", help="Dagster's event log and library warnings too"
    )
    parser.add_argument(
        "--api-fault",
        type=int,
        metavar="STATUS",
        help="the demo API answers every page with this HTTP status: how a failed load reads",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet(verbose=args.verbose)

    os.environ.setdefault("DAGSTER_HOME", str(settings.PROJECT_ROOT / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    # A fresh key per run, known only to this process and the API it starts; never printed.
    api_key = secrets.token_urlsafe(24)

    from dagster import DagsterInstance

    options = DemoApiOptions(records=args.records, api_key=api_key, fail_status=args.api_fault)
    with DemoApiServer(options, port=0) as api:
        print(f"demo fulfillment API on {api.url} serving {served_summary(options)}", flush=True)
        os.environ["SOURCES__FULFILLMENT__BASE_URL"] = api.url
        os.environ["SOURCES__FULFILLMENT__API_KEY"] = api_key
        job = refresh_job(verbose=args.verbose)
        # Configured loggers replace Dagster's default console logger (every event at DEBUG).
        run_config: dict[str, Any] = {} if args.verbose else {"loggers": {"steps": {}}}
        with DagsterInstance.get() as instance:
            result = job.execute_in_process(
                run_config=run_config, instance=instance, raise_on_error=False
            )
    print(summary(result, verbose=args.verbose), flush=True)
    return 0 if result.success else 1


class ProgressLines(logging.Handler):
    """The source's progress lines, indented under the load's step, on standard output."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"    {record.getMessage()}", file=sys.stdout, flush=True)
        except Exception:
            self.handleError(record)


def quiet(*, verbose: bool) -> None:
    """The terminal shows progress and the summary; the rest only with --verbose."""
    progress = logging.getLogger(PROGRESS_LOGGER)
    progress.setLevel(logging.INFO)
    progress.propagate = False
    if not any(isinstance(handler, ProgressLines) for handler in progress.handlers):
        progress.addHandler(ProgressLines())
    if verbose:
        return
    # dlt's own configuration, read by dlt when the pipeline starts: its warnings are for who
    # debugs a load, not for every run.
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    warnings.simplefilter("ignore")


def refresh_job(*, verbose: bool) -> Any:
    """The refresh job; unless verbose, with `step_logger` as its logger, configured in place of
    Dagster's console logger. The instance records every event either way: the UI shows the run
    in full."""
    from dagster import Definitions

    from fulfillment_assets.automation.freshness import REFRESH_JOB_NAME
    from fulfillment_assets.definitions import defs

    if not verbose:
        from fulfillment_assets.demo.progress import step_logger

        defs = Definitions.merge(defs, Definitions(loggers={"steps": step_logger}))
    return defs.resolve_job_def(REFRESH_JOB_NAME)


def _error_lines(error: Any, verbose: bool) -> list[str]:
    """What went wrong, once; with verbose, every error of the chain below it with its stack."""
    lines = readable_cause(error).splitlines()
    if not verbose:
        return [*lines, "(every wrapper and stack: --verbose, or the run's page in the UI)"]
    for cause in error_chain(error):
        lines += cause.message.rstrip().splitlines()
        lines += "".join(cause.stack).rstrip().splitlines()
    return lines


def summary(result: Any, *, verbose: bool = False) -> str:
    """Rows per asset, every check result, every failure in full, and where the data is."""
    lines = [f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}"]
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        rows = metadata.get("dagster/row_count")
        lines.append(
            f"  materialized {event.asset_key.to_user_string():45} "
            f"{rows.value if rows else '-':>9} rows"
        )
    for event in result.get_asset_check_evaluations():
        outcome = "passed" if event.passed else f"FAILED ({event.severity.value})"
        lines.append(f"  check {event.asset_check_key.name:40} {outcome}")
    for event in result.all_events:
        if event.is_step_failure:
            lines.append(f"  step {event.step_key} failed:")
            error = event.step_failure_data.error
            lines += [f"    {line}" for line in _error_lines(error, verbose)]
    if settings.destination_name() == "duckdb":
        lines.append(f"DuckDB file: {settings.duckdb_path()} (dataset {settings.DATASET_NAME})")
    lines.append(
        f"Dagster runs: {os.environ['DAGSTER_HOME']} (open with: dg dev -w workspace.yaml)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
