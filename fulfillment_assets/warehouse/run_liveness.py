"""Runs whose process died (SIGKILL, the OOM killer, a lost machine) are marked failed.

Dagster's default run launcher cannot tell a dead run worker from a busy one, and a run started
from the CLI has no launcher at all: a killed run stays STARTED forever, and with one run at a
time (`dagster.yaml`) it blocks every later run, the sensor's included.

Each run of this code location holds an advisory lock (`flock`) on a file of its own under
`<data dir>/run_liveness/` while it executes; the kernel releases it the moment the process dies,
however it dies. A run still in progress whose file is unlocked is dead: `fail_dead_runs` marks
it failed. It runs when a run starts (the `RunLiveness` resource, which every asset and check of
the project requires: the next CLI run cleans up after a killed one, no daemon needed) and in a
sensor (`automation/dead_runs.py`: so the UI, schedule and sensor runs queued behind it get
going). Under a run launcher with a worker health check (Docker, Kubernetes), Dagster's run
monitoring fails dead runs across hosts; this lock covers runs on this host and data dir.
Runs of other machines or processes never had a file here and are left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    ConfigurableResource,
    DagsterInstance,
    DagsterRunStatus,
    InitResourceContext,
    RunsFilter,
)

from fulfillment_assets import settings

logger = logging.getLogger(__name__)

# The resource key every asset and check of the project requires (`required_resource_keys`).
RUN_LIVENESS = "run_liveness"

# A run in these states has (or had) a process executing it.
EXECUTING_STATUSES = [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def liveness_dir() -> Path:
    return settings.data_dir() / "run_liveness"


@contextlib.contextmanager
def hold_run_liveness(run_id: str) -> Iterator[Path]:
    """Holds this process's liveness lock for `run_id` until the block ends (or the process dies).

    The file is locked before it takes its final name, so a reader never finds it unlocked while
    its run lives; it is unlinked before the lock is released, so a run that ends normally is
    never taken for dead.
    """
    directory = liveness_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run_id}.{os.getpid()}.lock"
    staging = path.with_suffix(".new")
    fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        # A file of this process's own, just created: nothing else takes it, so never a wait.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname()}
        os.write(fd, json.dumps(holder).encode())
        os.replace(staging, path)
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        os.close(fd)  # releases the lock


def _is_dead(path: Path) -> bool:
    """Whether the process that locked `path` is gone (its lock free, the file still linked)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False  # its run ended normally a moment ago
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # held: the process lives
        # Unlinked while we waited: its run ended normally.
        return os.fstat(fd).st_nlink > 0
    finally:
        os.close(fd)


@dataclass(frozen=True)
class DeadRunSweep:
    """What one look for dead runs found: the runs in progress that hold (or held) a liveness
    lock under `directory`, those alive and those marked failed, and stale files removed."""

    directory: Path
    alive: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    stale_files: int = 0

    def summary(self) -> str:
        """One line for a sensor tick's log: how many runs it checked, and what it found."""
        checked = len(self.alive) + len(self.failed)
        if not checked:
            text = (
                "checked 0 runs: no run of this project is in progress on this machine (none "
                f"holds a liveness lock in {self.directory})"
            )
        elif not self.failed:
            text = (
                f"checked {checked} run(s) of this project in progress on this machine, none "
                f"dead: {', '.join(self.alive)}"
            )
        else:
            text = (
                f"checked {checked} run(s) of this project in progress on this machine: marked "
                f"{len(self.failed)} failed, whose process died without reporting an end (its "
                f"liveness lock was free): {', '.join(self.failed)}"
            )
            if self.alive:
                text += f"; alive: {', '.join(self.alive)}"
        if self.stale_files:
            text += f"; removed {self.stale_files} lock file(s) of runs no longer in progress"
        return text


def fail_dead_runs(instance: DagsterInstance, log: logging.Logger | None = None) -> DeadRunSweep:
    """Marks failed every in-progress run whose process died on this machine; says what it found.

    Files of runs no longer in progress are removed on the way.
    """
    directory = liveness_dir()
    if not directory.is_dir():
        return DeadRunSweep(directory)
    log = log or logger
    files_by_run: dict[str, list[Path]] = {}
    for path in directory.glob("*.lock"):
        files_by_run.setdefault(path.name.split(".", 1)[0], []).append(path)
    if not files_by_run:
        return DeadRunSweep(directory)
    in_progress = {
        record.dagster_run.run_id: record.dagster_run
        for record in instance.get_run_records(
            RunsFilter(run_ids=list(files_by_run), statuses=EXECUTING_STATUSES)
        )
    }
    alive, failed, stale = [], [], 0
    for run_id, paths in files_by_run.items():
        dead = [path for path in paths if _is_dead(path)]
        run = in_progress.get(run_id)
        if run is not None and len(dead) == len(paths):
            instance.report_run_failed(
                run,
                "The process executing this run died (killed, e.g. SIGKILL or out of memory) "
                "without reporting an end: marked failed so later runs can proceed. Nothing it "
                "had not finished loading was kept; the next run loads everything again.",
            )
            # Slots of an op-granularity pool are freed by the daemon only after a delay; this
            # run is known dead now.
            if instance.event_log_storage.supports_global_concurrency_limits:
                instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            log.warning(f"run {run_id} had died without ending: marked it failed")
            failed.append(run_id)
        elif run is not None:
            alive.append(run_id)
        else:
            stale += len(dead)
        for path in dead:  # a dead process's file is stale, whatever its run's status
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return DeadRunSweep(directory, tuple(alive), tuple(failed), stale)


class RunLiveness(ConfigurableResource):
    """Dead-run recovery, required by every asset and check: when a run starts, the runs whose
    process died before it are marked failed; while it runs, its process holds its liveness
    lock."""

    @contextlib.contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[RunLiveness]:
        if context.run is None or context.instance is None:
            yield self
            return
        fail_dead_runs(context.instance, context.log)
        with hold_run_liveness(context.run.run_id):
            yield self
