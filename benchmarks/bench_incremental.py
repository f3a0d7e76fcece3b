"""Incremental benchmark (issue 13): a full run vs an incremental run with 1 % changed, and a run
with nothing changed, all in one process, as ratios measured in one run.

    python benchmarks/bench_incremental.py [--records 1000000] [--changed 0.01] [--no-write]

The demo API runs in this process (a uvicorn thread on 127.0.0.1), so its request log counts the
pages each run fetches; every run materializes every asset and check of the project
(`fulfillment_assets.definitions.defs`) into one Dagster instance and one DuckDB file, each with a
fresh local dlt dir. Measured: the ingestion step's duration (STEP_START to STEP_SUCCESS of
`fulfillment_ingest`), the whole run's duration (Dagster's run record: checks and models
included) and the page requests. Appends the report to docs/benchmarks.md unless --no-write.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dagster import DagsterEventType, DagsterInstance, materialize  # noqa: E402

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer  # noqa: E402
from fulfillment_assets.demo_api.changes import Changes  # noqa: E402
from fulfillment_assets.demo_api.records import base_updated_bound, spread_ids  # noqa: E402

FULL_REFRESH = {"ops": {"fulfillment_ingest": {"config": {"full_refresh": True}}}}
REPORT_HEADING = "## Incremental sync (bench_incremental.py)"


def _run(instance: DagsterInstance, api: DemoApiServer, data: Path, name: str, **kw: Any) -> dict:
    """One run of every asset and check; its durations, pages and raw metadata."""
    from fulfillment_assets.definitions import defs

    # A fresh local dlt dir per run (named by number: dlt's file templates take no "%").
    os.environ["FULFILLMENT_DATA_DIR"] = str(data / f"local-{len(list(data.glob('local-*')))}")
    api.clear_requests()
    result = materialize(
        list(defs.assets or []) + list(defs.asset_checks or []),
        resources=defs.resources,
        instance=instance,
        **kw,
    )
    steps: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event and event.step_key == "fulfillment_ingest":
            steps[event.event_type_value] = entry.timestamp
    ingest = steps[DagsterEventType.STEP_SUCCESS.value] - steps[DagsterEventType.STEP_START.value]
    record = instance.get_run_record_by_id(result.run_id)
    (raw,) = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "fulfillment_data"
    ]
    pages = [r for r in api.requests if r.status == 200]
    return {
        "name": name,
        "ingest_s": ingest,
        "run_s": record.end_time - record.start_time,
        "requests": len(pages),
        "mode": raw["sync_mode"].value,
        "records": raw["records_received"].value,
        "marked": raw["rows_marked_deleted"].value,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    n = args.records
    key = secrets.token_urlsafe(16)
    with (
        tempfile.TemporaryDirectory(prefix="bench_incr_") as tmp,
        DemoApiServer(DemoApiOptions(records=n, api_key=key), port=0) as api,
    ):
        data = Path(tmp)
        os.environ.update(
            {
                "SOURCES__FULFILLMENT__BASE_URL": api.url,
                "SOURCES__FULFILLMENT__API_KEY": key,
                "SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM": "updated_since",
                "DESTINATION__DUCKDB__CREDENTIALS": str(data / "warehouse.duckdb"),
                "RUNTIME__DLTHUB_TELEMETRY": "false",
                "DAGSTER_TELEMETRY_ENABLED": "false",
            }
        )
        changed = spread_ids(n, args.changed, 0, 2)
        # Warm the API's index of base update times (built once per data set, cached): the
        # first filtered request would otherwise pay for it inside the measured run.
        Changes(DemoApiOptions(records=n)).filtered(base_updated_bound(0) - 86_400)
        (data / "dagster_home").mkdir()
        with DagsterInstance.local_temp(str(data / "dagster_home")) as instance:
            runs = [_run(instance, api, data, "full (first run, empty table)")]
            runs.append(_run(instance, api, data, "full refresh", run_config=FULL_REFRESH))
            api.configure(changed_ids=changed)
            runs.append(_run(instance, api, data, f"incremental, {args.changed:.0%} changed"))
            runs.append(_run(instance, api, data, "incremental, nothing changed"))
    report = _report(n, len(changed), runs)
    print(report)
    if not args.no_write:
        path = ROOT / "docs" / "benchmarks.md"
        text = path.read_text()
        if REPORT_HEADING in text:
            text = text[: text.index(REPORT_HEADING)].rstrip() + "\n"
        path.write_text(text + "\n" + report)
    return 0


def _report(n: int, changed: int, runs: list[dict]) -> str:
    full, refresh, incremental, unchanged = runs
    full_pages = refresh["requests"]
    lines = [
        REPORT_HEADING,
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {n:,} records, {changed:,} changed "
        "between runs, pages of 100, one process (API thread + in-process Dagster runs of every "
        "asset and check), DuckDB. Durations in seconds; ratios against the full refresh.",
        "",
        "| run | mode | records received | page requests | ingestion step | whole run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run['name']} | {run['mode']} | {run['records']:,} | {run['requests']:,} | "
            f"{run['ingest_s']:.1f} | {run['run_s']:.1f} |"
        )
    ingest_ratio = incremental["ingest_s"] / refresh["ingest_s"]
    run_ratio = incremental["run_s"] / refresh["run_s"]
    page_share = incremental["requests"] / full_pages
    lines += [
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
        f"| incremental ingestion step ≤ 1/10 of a full run's | {ingest_ratio:.3f} | "
        f"{'yes' if ingest_ratio <= 0.1 else 'NO'} |",
        f"| incremental run fetches ≤ 2 % of the pages | {page_share:.2%} | "
        f"{'yes' if page_share <= 0.02 else 'NO'} |",
        f"| whole incremental run ≤ 1/3 of a full run's | {run_ratio:.3f} | "
        f"{'yes' if run_ratio <= 1 / 3 else 'NO'} |",
        f"| nothing changed: ≤ 2 page requests | {unchanged['requests']} | "
        f"{'yes' if unchanged['requests'] <= 2 else 'NO'} |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
