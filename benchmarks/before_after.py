"""Two versions of the package, interleaved on one machine: is a change within noise?

    .venv/bin/python benchmarks/before_after.py --before 518865b [--after HEAD] \
        --cases 1000000@0 100000@20 --repeats 3 [--minimal] \
        [--before-env NAME=VALUE ...] [--after-env NAME=VALUE ...]

For each case (records @ ms of API latency) one demo API serves both versions; the project's
raw-table load runs before, after, before, after, ... (`contenders.py project`, a fresh process
and data dir each), so both see the same machine load. With `--minimal`, issue 13's minimal
loader (`contenders.py minimal`: 4 threads, orjson, pyarrow batches of 10,000, DuckDB insert)
runs in the same rotation. Prints a Markdown table: best and median seconds of each, after /
before of the bests and, with `--minimal`, the fraction of the minimal loader's speed the
"after" version reaches (minimal's best seconds / after's best seconds).
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
    parser.add_argument("--minimal", action="store_true", help="run the minimal loader too")
    for side in ("before", "after"):
        parser.add_argument(
            f"--{side}-env",
            nargs="*",
            default=[],
            metavar="NAME=VALUE",
            help=f"settings of the {side} runs only, e.g. SOURCES__FULFILLMENT__CHUNK_PAGES=5000",
        )
    args = parser.parse_args()
    base = os.environ | {KEY_ENV: secrets.token_urlsafe(24), "RUNTIME__DLTHUB_TELEMETRY": "false"}
    base = {k: v for k, v in base.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="before_after_") as tmp:
        work = Path(tmp)
        envs = {
            name: base
            | {"PYTHONPATH": str(code_at(ref, work))}
            | dict(setting.split("=", 1) for setting in settings)
            for name, ref, settings in (
                ("before", args.before, args.before_env),
                ("after", args.after, args.after_env),
            )
        }
        for case in args.cases:
            records, latency = int(case.split("@")[0]), float(case.split("@")[1])
            runs = [("before", "project"), ("after", "project")]
            runs += [("minimal", "minimal")] if args.minimal else []
            seconds: dict[str, list[float]] = {name: [] for name, _ in runs}
            with DemoApi(records, latency, envs["after"], work / "api.log") as api:
                for repeat in range(args.repeats):
                    for name, contender in runs:
                        data_dir = work / f"{case}_{name}_{repeat}"
                        env = envs.get(name, envs["after"])
                        result: dict[str, Any] = run_child(
                            contender, api.url, records, latency, data_dir, env, args
                        )
                        assert result.get("rows") == records, result
                        seconds[name].append(result["seconds"])
            best = {name: min(values) for name, values in seconds.items()}
            row = f"| {records:,} @ {latency:g} ms |"
            for name in seconds:
                row += f" {best[name]:.1f} ({statistics.median(seconds[name]):.1f}) |"
            row += f" {best['after'] / best['before']:.2f} |"
            if args.minimal:
                row += f" {best['minimal'] / best['after']:.2f} |"
            rows.append(row)
            print(rows[-1], flush=True)
    print(
        f"\nbefore: {args.before} {' '.join(args.before_env)}, after: {args.after} "
        f"{' '.join(args.after_env)}, {args.repeats} runs each, interleaved"
    )
    header = "| records @ API latency | before: best (median) s | after: best (median) s |"
    header += " minimal: best (median) s |" if args.minimal else ""
    header += " after / before |"
    header += " after's fraction of minimal's speed |" if args.minimal else ""
    print(header)
    print("|" + " --- |" * header.count(" |"))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
