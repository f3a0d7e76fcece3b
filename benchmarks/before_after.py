"""Two versions of the package, interleaved on one machine: is a change within noise?

    .venv/bin/python benchmarks/before_after.py --before 518865b [--after HEAD] \
        --cases 1000000@0 100000@20 --repeats 3

For each case (records @ ms of API latency) one demo API serves both versions; the project's
raw-table load runs before, after, before, after, ... (`contenders.py project`, a fresh process
and data dir each), so both see the same machine load. Prints a Markdown table: best and median
seconds of each, and after / before of the bests.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import KEY_ENV, ROOT, DemoApi, run_child  # noqa: E402


def code_at(ref: str, work: Path) -> Path:
    """The package at `ref` (a commit, or `WORKTREE` for the working tree) in a dir of its own."""
    code = work / ref.replace("/", "_")
    if ref == "WORKTREE":
        archive = ["tar", "-C", str(ROOT), "-cf", "-", "fulfillment_assets"]
    else:
        archive = ["git", "-C", str(ROOT), "archive", ref, "fulfillment_assets"]
    tar = subprocess.run(archive, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as files:
        files.extractall(code, filter="data")
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default="WORKTREE")
    parser.add_argument("--cases", nargs="+", default=["1000000@0", "100000@20"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=2400)
    parser.add_argument("--max-rss-mb", type=float, default=10_000)
    args = parser.parse_args()
    base = os.environ | {KEY_ENV: secrets.token_urlsafe(24), "RUNTIME__DLTHUB_TELEMETRY": "false"}
    base = {k: v for k, v in base.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="before_after_") as tmp:
        work = Path(tmp)
        envs = {
            name: base | {"PYTHONPATH": str(code_at(ref, work))}
            for name, ref in (("before", args.before), ("after", args.after))
        }
        for case in args.cases:
            records, latency = int(case.split("@")[0]), float(case.split("@")[1])
            seconds: dict[str, list[float]] = {"before": [], "after": []}
            with DemoApi(records, latency, envs["after"], work / "api.log") as api:
                for repeat in range(args.repeats):
                    for name, env in envs.items():
                        data_dir = work / f"{case}_{name}_{repeat}"
                        result: dict[str, Any] = run_child(
                            "project", api.url, records, latency, data_dir, env, args
                        )
                        assert result.get("rows") == records, result
                        seconds[name].append(result["seconds"])
            best = {name: min(values) for name, values in seconds.items()}
            rows.append(
                f"| {records:,} @ {latency:g} ms | {best['before']:.1f} "
                f"({statistics.median(seconds['before']):.1f}) | {best['after']:.1f} "
                f"({statistics.median(seconds['after']):.1f}) | "
                f"{best['after'] / best['before']:.2f} |"
            )
            print(rows[-1], flush=True)
    print(f"\nbefore: {args.before}, after: {args.after}, {args.repeats} runs each, interleaved")
    print("| records @ API latency | before: best (median) s | after: best (median) s | ratio |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
