"""Rate-limit benchmark: the project's walk against an API allowing LIMIT requests per WINDOW s.

    python benchmarks/bench_rate_limit.py [--pages 150] [--limit 30] [--window 3]

A loopback API of its own (a fixed window, integer reset headers as real APIs send them) serves
`pages` pages of 100 records, in two shapes: 429 with `X-Rate-Limit-Reset` and no `Retry-After`
once the window is spent, and `X-RateLimit-Remaining` / `-Limit` / `-Reset` on every answer. The
source runs with the seed's settings (backoff factor 2, page_concurrency 8) into a fresh DuckDB;
printed: the walk's seconds against the limit's own minimum (requests x window / limit), the
ratio (target <= 1.2) and the 429s the API answered.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dlt

from fulfillment_assets.source import fulfillment

KEY = "bench-rate-limit-key"


class FixedWindowApi:
    def __init__(self, records: int, limit: int, window: float, remaining: bool) -> None:
        self.records, self.limit, self.window, self.remaining = records, limit, window, remaining
        self.lock = threading.Lock()
        self.window_start, self.used, self.statuses = time.time(), 0, [0, 0]
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, headers, body = api.answer(self.path)
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            now = time.time()
            if now - self.window_start >= self.window:
                self.window_start, self.used = now, 0
            reset = str(math.ceil(self.window_start + self.window - now))
            limited = self.used >= self.limit
            self.used += 0 if limited else 1
            self.statuses[limited] += 1
            headers = {"X-Rate-Limit-Reset": reset}
            if self.remaining:
                headers = {
                    "X-RateLimit-Reset": reset,
                    "X-RateLimit-Limit": str(self.limit),
                    "X-RateLimit-Remaining": str(self.limit - self.used),
                }
        if limited:
            return 429, headers, b'{"error": "rate limit exceeded"}'
        query = parse_qs(urlsplit(path).query)
        offset, size = int(query["offset"][0]), int(query["limit"][0])
        data = [
            {"id": i, "customer_id": i % 97, "order_status": "shipped", "amount": 1.25,
             "updated_at": "2026-10-01T00:00:00Z"}
            for i in range(offset + 1, min(offset + size, self.records) + 1)
        ]  # fmt: skip
        return 200, headers, json.dumps({"data": data, "total": self.records}).encode()


def measure(pages: int, limit: int, window: float, remaining: bool) -> dict[str, float]:
    api = FixedWindowApi(pages * 100, limit, window, remaining)
    with tempfile.TemporaryDirectory() as data_dir:
        pipeline = dlt.pipeline(
            pipeline_name="bench_rate_limit",
            destination=dlt.destinations.duckdb(str(Path(data_dir) / "bench.duckdb")),
            dataset_name="fulfillment",
            pipelines_dir=str(Path(data_dir) / "pipelines"),
        )
        started = time.perf_counter()
        pipeline.extract(fulfillment(base_url=api.url, api_key=KEY, backoff_factor=2.0))
        seconds = time.perf_counter() - started
    api.server.shutdown()
    requests_needed = pages + 1  # and the empty page that ends the walk
    minimum = requests_needed * window / limit
    return {
        "seconds": seconds,
        "minimum": minimum,
        "ratio": seconds / minimum,
        "ok": api.statuses[0],
        "429": api.statuses[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=150)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--window", type=float, default=3.0)
    args = parser.parse_args()
    print("| API shape | pages | limit | walk s | minimum s | ratio | 200s | 429s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, remaining in (("429 + X-Rate-Limit-Reset", False), ("X-RateLimit-Remaining", True)):
        r = measure(args.pages, args.limit, args.window, remaining)
        print(
            f"| {name} | {args.pages} | {args.limit}/{args.window:g} s | {r['seconds']:.1f} | "
            f"{r['minimum']:.1f} | {r['ratio']:.2f} | {r['ok']:.0f} | {r['429']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
