"""A full walk killed at ~60 %, then resumed: how many pages the resuming run fetches, and when.

    .venv/bin/python benchmarks/bench_resume.py [--records 1000000] [--chunk-pages 1000] [--at 0.6]

One demo API (in this process, on a loopback port) serves `records`; the project's raw-table
asset runs from the command line (`dagster asset materialize`) in a DAGSTER_HOME and data dir of
its own, as a user's would:
1. an uninterrupted full walk (the reference: seconds, pages);
2. a fresh one, SIGKILLed (its whole process group) once it asks for the page at `at` of the
   records, then the run that resumes it: the pages it fetched against the pages left after the
   committed position plus the overlap (one page), and its seconds against the reference's.
Prints a Markdown table. Counts are exact; seconds are one run each on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fulfillment_assets import settings  # noqa: E402
from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer  # noqa: E402
from fulfillment_assets.ingest.walks import WALKS  # noqa: E402
from fulfillment_assets.warehouse.resource import Warehouse  # noqa: E402

RAW = ["asset", "materialize", "-m", "fulfillment_assets.definitions"]
RAW += ["--select", "fulfillment/fulfillment_data"]


def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "dagster"), *RAW]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def timed_run(env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = start(env)
    if process.wait(timeout=3600) != 0:
        raise SystemExit("the run failed")
    return time.perf_counter() - started


def environment(work: Path, name: str, api: DemoApiServer, key: str, chunk_pages: int) -> dict:
    home = work / name / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    return env | {
        "DAGSTER_HOME": str(home),
        "FULFILLMENT_DATA_DIR": str(work / name / "data"),
        "SOURCES__FULFILLMENT__BASE_URL": api.url,
        "SOURCES__FULFILLMENT__API_KEY": key,
        "SOURCES__FULFILLMENT__CHUNK_PAGES": str(chunk_pages),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chunk-pages", type=int, default=1_000)
    parser.add_argument("--at", type=float, default=0.6)
    args = parser.parse_args()
    key = secrets.token_urlsafe(24)
    options = DemoApiOptions(records=args.records, api_key=key)
    with (
        tempfile.TemporaryDirectory(prefix="bench_resume_") as tmp,
        DemoApiServer(options, port=0) as api,
    ):
        work = Path(tmp)
        reference_env = environment(work, "reference", api, key, args.chunk_pages)
        api.clear_requests()
        reference_seconds = timed_run(reference_env)
        reference_pages = len(api.requests)

        env = environment(work, "resumed", api, key, args.chunk_pages)
        at = int(args.at * args.records)
        api.clear_requests()
        killed = start(env)
        while not any((request.offset or 0) >= at for request in api.requests):
            if killed.poll() is not None:
                raise SystemExit("the run ended before it could be killed")
            time.sleep(0.01)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
        os.environ["FULFILLMENT_DATA_DIR"] = env["FULFILLMENT_DATA_DIR"]
        ((position,),) = Warehouse().query(f"SELECT position FROM fulfillment.{WALKS}")
        committed = json.loads(position)["offset"]
        api.clear_requests()
        resumed_seconds = timed_run(env)
        offsets = [request.offset or 0 for request in api.requests]
        resume_at = committed - settings.PAGE_LIMIT
        # The pages left from where the walk stood, the overlap page, and the empty page at the end.
        allowed = len(range(committed, args.records, settings.PAGE_LIMIT)) + 1 + 1
    print(f"{args.records:,} records, chunks of {args.chunk_pages} pages, killed at {args.at:.0%}")
    print("| run | pages fetched | seconds |")
    print("| --- | --- | --- |")
    print(f"| uninterrupted walk | {reference_pages} | {reference_seconds:.1f} |")
    print(
        f"| resumed at offset {resume_at:,} (committed {committed:,}) | {len(offsets)} "
        f"(at most {allowed}: the rest, the overlap, the empty page; lowest offset "
        f"{min(offsets):,}, each once: {len(set(offsets)) == len(offsets)}) | "
        f"{resumed_seconds:.1f} ({resumed_seconds / reference_seconds:.2f}x the whole walk) |"
    )


if __name__ == "__main__":
    main()
