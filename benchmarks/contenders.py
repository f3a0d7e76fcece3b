"""One contender of the ingest benchmark, run in a fresh process by bench_ingest.py.

    python benchmarks/contenders.py {project,seed,floor,minimal,api} --base-url URL \
        --data-dir DIR ...

The API key comes from the environment (BENCH_API_KEY; the project reads its own
SOURCES__FULFILLMENT__API_KEY). The last stdout line is `BENCH_RESULT {json}`: the seconds of the
load itself (imports and interpreter start excluded, timed by the parent separately), the rows in
the destination afterwards, the peak RSS of this process and, for dlt, the trace's step timings.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

PAGE = 100
TOP_COLUMNS = (
    "id",
    "customer_id",
    "order_status",
    "created_at",
    "updated_at",
    "amount",
    "currency",
    "items_count",
)


def peak_rss_mb() -> float:
    """VmHWM: the peak resident set of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def start_timer() -> float:
    """Marks the start of the load; the parent reads it to bound the time of a killed child."""
    print(f"BENCH_STARTED {time.time()}", flush=True)
    return time.perf_counter()


def count_rows(duckdb_file: Path, table: str) -> int:
    import duckdb

    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def step_seconds(pipeline: Any) -> dict[str, float]:
    """Seconds per dlt step (extract, normalize, load) of the pipeline's last run."""
    steps: dict[str, float] = {}
    for step in pipeline.last_trace.steps:
        seconds = (step.finished_at - step.started_at).total_seconds()
        steps[step.step] = steps.get(step.step, 0.0) + seconds
    return steps


def run_project(args: argparse.Namespace) -> dict[str, Any]:
    """The project's raw-table asset through dagster.materialize; configured by env vars."""
    from dagster import DagsterInstance, materialize

    from fulfillment_assets.definitions import defs

    try:
        from fulfillment_assets.contract import RAW_ASSET_KEY
        from fulfillment_assets.warehouse.resource import fulfillment_pipeline
    except ImportError:  # a commit from before the package's layers (before_after.py --before)
        from fulfillment_assets.assets import RAW_ASSET_KEY

        from fulfillment_assets.warehouse import fulfillment_pipeline

    started = start_timer()
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            list(defs.assets or []),
            resources=defs.resources,
            selection=[RAW_ASSET_KEY],
            instance=instance,
        )
    seconds = time.perf_counter() - started
    assert result.success
    return {
        "seconds": seconds,
        "steps": step_seconds(fulfillment_pipeline()),
        "rows": count_rows(args.data_dir / "warehouse.duckdb", "fulfillment.fulfillment_data"),
    }


def run_seed(args: argparse.Namespace, loader_file_format: str | None = None) -> dict[str, Any]:
    """The seed's rest_api configuration verbatim, run by a plain dlt pipeline."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    started = start_timer()
    source = rest_api_source(
        {
            "client": {
                "base_url": args.base_url,
                "auth": {
                    "type": "api_key",
                    "name": "api_key",
                    "api_key": os.environ["BENCH_API_KEY"],
                    "location": "query",
                },
            },
            "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
            "resources": [
                {
                    "name": "fulfillment_data",
                    "endpoint": {
                        "path": "/v1/fulfillment",
                        "data_selector": "data",
                        "paginator": {"type": "offset", "limit": 100},
                    },
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="fulfillment_seed",
        destination=dlt.destinations.duckdb(str(args.data_dir / "seed.duckdb")),
        dataset_name="fulfillment",
        pipelines_dir=str(args.data_dir / "dlt_pipelines"),
    )
    pipeline.run(source, loader_file_format=loader_file_format).raise_on_failed_jobs()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "steps": step_seconds(pipeline),
        "rows": count_rows(args.data_dir / "seed.duckdb", "fulfillment.fulfillment_data"),
    }


def run_seed_parquet(args: argparse.Namespace) -> dict[str, Any]:
    """The seed's configuration with the one argument a dlt user would add for speed: dlt's own
    parquet loader (`loader_file_format="parquet"`); dlt still normalizes the rows in Python."""
    return run_seed(args, loader_file_format="parquet")


def _pages(fetch: Callable[[int], dict[str, Any]], concurrency: int) -> Iterator[list[dict]]:
    """Every page in offset order; with concurrency > 1 at most that many in flight."""
    first = fetch(0)
    yield first["data"]
    offsets = iter(range(PAGE, first["total"], PAGE))
    if concurrency <= 1:
        for offset in offsets:
            yield fetch(offset)["data"]
        return
    with ThreadPoolExecutor(concurrency) as pool:
        window = deque(pool.submit(fetch, o) for o in islice(offsets, concurrency))
        while window:
            page = window.popleft().result()["data"]
            next_offset = next(offsets, None)
            if next_offset is not None:
                window.append(pool.submit(fetch, next_offset))
            yield page


def _arrow_batch(rows: list[dict[str, Any]]) -> Any:
    import orjson
    import pyarrow as pa

    types = {"id": pa.int64(), "amount": pa.float64(), "items_count": pa.int64()}
    columns = {
        name: pa.array([r.get(name) for r in rows], types.get(name, pa.string()))
        for name in TOP_COLUMNS
    }
    shipments = [r.get("shipment") for r in rows]
    columns["shipment"] = pa.array(
        [None if s is None else orjson.dumps(s).decode() for s in shipments], pa.string()
    )
    return pa.table(columns)


def _page_fetcher(args: argparse.Namespace, pool_size: int) -> Callable[[int], dict[str, Any]]:
    """GET one page with a plain `requests.Session`, parsed with orjson."""
    import orjson
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.trust_env = False  # else every request scans os.environ for proxy settings
    session.mount("http://", HTTPAdapter(pool_maxsize=max(pool_size, 1)))
    url, key = f"{args.base_url}/v1/fulfillment", os.environ["BENCH_API_KEY"]

    def fetch(offset: int) -> dict[str, Any]:
        response = session.get(
            url, params={"api_key": key, "offset": offset, "limit": PAGE}, timeout=60
        )
        response.raise_for_status()
        return orjson.loads(response.content)

    return fetch


def _create_table(con: Any, key: str) -> None:
    """The raw table's top-level columns, `shipment` as JSON; `key` follows `id`'s type."""
    con.execute("CREATE SCHEMA fulfillment")
    con.execute(
        f"CREATE TABLE fulfillment.fulfillment_data (id BIGINT{key}, customer_id VARCHAR, "
        "order_status VARCHAR, created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, amount DOUBLE, "
        "currency VARCHAR, items_count BIGINT, shipment JSON)"
    )


def _insert_in_batches(con: Any, pages: Iterator[list[dict]], table: str, batch_rows: int) -> None:
    """The pages' records inserted into `table` as Arrow batches of at least `batch_rows`."""
    rows: list[dict[str, Any]] = []
    for page in pages:
        rows.extend(page)
        if len(rows) >= batch_rows:
            con.register("batch", _arrow_batch(rows))
            con.execute(f"INSERT INTO {table} SELECT * FROM batch")
            rows.clear()
    if rows:
        con.register("batch", _arrow_batch(rows))
        con.execute(f"INSERT INTO {table} SELECT * FROM batch")


def run_floor(args: argparse.Namespace) -> dict[str, Any]:
    """A minimal loader: requests + orjson + pyarrow batches + one columnar upsert in DuckDB."""
    import duckdb
    import orjson  # noqa: F401 - imported before the timer starts, like duckdb
    import requests  # noqa: F401

    started = start_timer()
    concurrency = 1 if args.latency_ms == 0 else args.concurrency
    fetch = _page_fetcher(args, concurrency)
    con = duckdb.connect(str(args.data_dir / "floor.duckdb"))
    _create_table(con, " PRIMARY KEY")
    con.execute("CREATE TEMP TABLE staging AS SELECT * FROM fulfillment.fulfillment_data LIMIT 0")
    # Bounded memory: staged 50k rows at a time.
    _insert_in_batches(con, _pages(fetch, concurrency), "staging", 50_000)
    # The newest version of an id wins, as in the project's merge.
    con.execute(
        "INSERT OR REPLACE INTO fulfillment.fulfillment_data SELECT * FROM staging "
        "QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) = 1"
    )
    con.close()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "rows": count_rows(args.data_dir / "floor.duckdb", "fulfillment.fulfillment_data"),
    }


def run_minimal(args: argparse.Namespace) -> dict[str, Any]:
    """Issue 13's minimal loader: 4 threads fetching pages, orjson, pyarrow batches of 10,000
    rows, DuckDB insert; no framework, no merge, no checks of what the API sent."""
    import duckdb
    import orjson  # noqa: F401 - imported before the timer starts, like duckdb
    import requests  # noqa: F401

    threads, batch_rows = 4, 10_000
    started = start_timer()
    fetch = _page_fetcher(args, threads)
    con = duckdb.connect(str(args.data_dir / "minimal.duckdb"))
    _create_table(con, "")
    _insert_in_batches(con, _pages(fetch, threads), "fulfillment.fulfillment_data", batch_rows)
    con.close()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "concurrency": threads,
        "rows": count_rows(args.data_dir / "minimal.duckdb", "fulfillment.fulfillment_data"),
    }


def run_api(args: argparse.Namespace) -> dict[str, Any]:
    """The demo API alone: 100-record pages, bodies read but not parsed, for a few seconds."""
    import requests

    url, key = f"{args.base_url}/v1/fulfillment", os.environ["BENCH_API_KEY"]
    offsets = range(0, args.records, PAGE)

    def measure(sessions: int) -> dict[str, float]:
        todo = iter(offsets)
        lock, done = threading.Lock(), [0, 0]  # requests, records
        deadline = time.perf_counter() + args.api_seconds

        def worker() -> None:
            with requests.Session() as session:
                session.trust_env = False
                while time.perf_counter() < deadline:
                    with lock:
                        offset = next(todo, None)
                    if offset is None:
                        return
                    params = {"api_key": key, "offset": offset, "limit": PAGE}
                    response = session.get(url, params=params, timeout=60)
                    response.raise_for_status()
                    with lock:
                        done[0] += 1
                        done[1] += min(PAGE, args.records - offset)

        started = time.perf_counter()
        with ThreadPoolExecutor(sessions) as pool:
            for future in [pool.submit(worker) for _ in range(sessions)]:
                future.result()  # a failed request fails the measurement
        seconds = time.perf_counter() - started
        return {"requests_per_s": done[0] / seconds, "records_per_s": done[1] / seconds}

    return {"sequential": measure(1), "concurrent": measure(args.concurrency)}


CONTENDERS = {
    "project": run_project,
    "seed": run_seed,
    "seed_parquet": run_seed_parquet,
    "floor": run_floor,
    "minimal": run_minimal,
    "api": run_api,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contender", choices=CONTENDERS)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--records", type=int, required=True, help="records the API serves")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--api-seconds", type=float, default=3.0)
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    load_average = os.getloadavg()[0]
    result = CONTENDERS[args.contender](args)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of the whole process (every thread), imports included; wall is noisier.
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    result["load_average"] = load_average
    result["peak_rss_mb"] = peak_rss_mb()
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
