"""The main job on one machine: demo API up, every asset materialized into DuckDB, a summary.

    python -m fulfillment_assets.demo_job [--records N]

The run goes to the Dagster instance in DAGSTER_HOME (default: ./dagster_home), so `dg dev`
afterwards shows it with its checks and metadata.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from fulfillment_assets import settings
from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000, help="records the demo API serves")
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(settings.PROJECT_ROOT / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    # A fresh key per run, known only to this process and the API it starts; never printed.
    api_key = secrets.token_urlsafe(24)

    from dagster import DagsterInstance

    from fulfillment_assets.automation import REFRESH_JOB_NAME
    from fulfillment_assets.definitions import defs

    with DemoApiServer(DemoApiOptions(records=args.records, api_key=api_key), port=0) as api:
        print(f"demo fulfillment API on {api.url} serving {args.records} records", flush=True)
        os.environ["SOURCES__FULFILLMENT__BASE_URL"] = api.url
        os.environ["SOURCES__FULFILLMENT__API_KEY"] = api_key
        with DagsterInstance.get() as instance:
            result = defs.resolve_job_def(REFRESH_JOB_NAME).execute_in_process(
                instance=instance, raise_on_error=False
            )
    print(summary(result))
    return 0 if result.success else 1


def summary(result) -> str:
    """Rows per asset, every check result, and where the data is."""
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
            lines.append(f"  step {event.step_key} failed: {event.step_failure_data.error.message}")
    if settings.destination_name() == "duckdb":
        lines.append(f"DuckDB file: {settings.duckdb_path()} (dataset {settings.DATASET_NAME})")
    lines.append(
        f"Dagster runs: {os.environ['DAGSTER_HOME']} (open with: dg dev -w workspace.yaml)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
