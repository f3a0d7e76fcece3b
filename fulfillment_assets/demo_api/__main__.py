"""CLI: python -m fulfillment_assets.demo_api --port 8765 --records 1000 ..."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Sequence

from fulfillment_assets.demo_api.options import DEMO_API_KEY, MALFORMED_KINDS, DemoApiOptions
from fulfillment_assets.demo_api.server import DemoApiServer
from fulfillment_assets.demo_api.summary import served_summary
from fulfillment_assets.settings import is_loopback_host


def build_parser() -> argparse.ArgumentParser:
    """The demo API's command line (the docs' commands are checked against it)."""
    p = argparse.ArgumentParser(
        prog="python -m fulfillment_assets.demo_api", description="Run the demo fulfillment API."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--allow-non-loopback", action="store_true", help="allow a non-loopback --host")
    p.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="read the api key from env var NAME (default: the built-in DEMO_API_KEY)",
    )
    p.add_argument("--records", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-version", type=int, default=0)
    p.add_argument("--max-limit", type=int, default=1000)
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--no-total", action="store_true", help="omit total from pages")
    p.add_argument("--endless", action="store_true", help="pages never end")
    p.add_argument("--fail-status", type=int, help="answer this status (e.g. 503)")
    p.add_argument("--fail-times", type=int, help="fail N times per offset, then recover")
    p.add_argument("--retry-after", help="Retry-After value sent with 429/503 faults")
    p.add_argument("--malformed", choices=MALFORMED_KINDS)
    p.add_argument("--malformed-offset", type=int, default=0)
    p.add_argument("--changed", type=_ids, default=frozenset(), help="ids updated, e.g. 5,17")
    p.add_argument("--added", type=int, default=0, help="records added after the last id")
    p.add_argument("--removed", type=_ids, default=frozenset(), help="ids no longer served")
    p.add_argument("--updated-since-param", default="updated_since", help="'' ignores it")
    return p


def _ids(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part.strip())


def _options(args: argparse.Namespace, api_key: str) -> DemoApiOptions:
    return DemoApiOptions(
        records=args.records,
        seed=args.seed,
        data_version=args.data_version,
        api_key=api_key,
        max_limit=args.max_limit,
        latency_ms=args.latency_ms,
        include_total=not args.no_total,
        endless=args.endless,
        fail_status=args.fail_status,
        fail_times=args.fail_times,
        retry_after=args.retry_after,
        malformed=args.malformed,
        malformed_offset=args.malformed_offset,
        changed_ids=args.changed,
        added_records=args.added,
        removed_ids=args.removed,
        updated_since_param=args.updated_since_param or None,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve in the foreground until SIGINT/SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not is_loopback_host(args.host) and not args.allow_non_loopback:
        parser.error(f"refusing non-loopback host {args.host!r}; pass --allow-non-loopback")
    api_key = DEMO_API_KEY
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env, "")
        if not api_key:
            # Name the variable, never its value.
            parser.error(f"environment variable {args.api_key_env} is unset or empty")
    try:
        options = _options(args, api_key)
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with DemoApiServer(options, host=args.host, port=args.port) as api:
        print(f"demo fulfillment API on {api.url} serving {served_summary(options)}", flush=True)
        # A timed wait keeps the main thread responsive to signals.
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
