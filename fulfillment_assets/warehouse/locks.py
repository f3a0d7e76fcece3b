"""Locks between the project's processes on this machine, every wait bounded and explained.

Two file locks keep the project's processes apart: the loading pipeline's (one load at a time:
a second would wipe the first's working dir) and the DuckDB file's (DuckDB lets one process open
the file at a time). A process that finds one held says who holds it and waits, at most
`FULFILLMENT_LOCK_WAIT_SECONDS` (6 h by default: a full walk of millions of orders can take
hours), then fails naming the holder and the setting. Each lock's holder (PID, host, since when)
is written beside the lock file when taken. Run liveness (`run_liveness.py`) uses an `flock` of
its own that no one else takes, so it never waits.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import socket
from pathlib import Path

import filelock

from fulfillment_assets import settings

LOCK_WAIT_SETTING = "FULFILLMENT_LOCK_WAIT_SECONDS"


class LockWaitTimeout(RuntimeError):
    """A lock was still held when its bounded wait ended; the message names the holder."""


@functools.cache
def machine_lock(path: str) -> filelock.FileLock:
    # One object per path and process, its count shared by the process's threads: re-entrant, so
    # dlt's loader threads (each borrowing a connection) never wait for each other.
    return filelock.FileLock(path, thread_local=False)


def _holder_file(lock: filelock.FileLock) -> Path:
    return Path(f"{lock.lock_file}.holder")


def holder(lock: filelock.FileLock) -> str:
    """Who holds the lock, as its holder wrote it when it took the lock."""
    try:
        found = json.loads(_holder_file(lock).read_text())
        return f"PID {found['pid']} on {found['host']} (since {found['since']})"
    except (OSError, ValueError, KeyError):
        return "another process (it did not say which)"


def acquire(lock: filelock.FileLock, what: str, log: logging.Logger) -> None:
    """Takes `lock`, waiting at most FULFILLMENT_LOCK_WAIT_SECONDS if another process has it."""
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        bound = settings.lock_wait_seconds()
        log.info(
            f"{what} is held by {holder(lock)}: waiting for it, at most {bound:.0f} s "
            f"({LOCK_WAIT_SETTING})"
        )
        try:
            lock.acquire(timeout=bound)
        except filelock.Timeout:
            raise LockWaitTimeout(
                f"waited {bound:.0f} s for {what}, still held by {holder(lock)}: let that "
                f"process finish (or end it if it hangs), or set {LOCK_WAIT_SETTING} to wait "
                "longer"
            ) from None
    if lock.lock_counter == 1:  # taken just now, not re-entered by this process
        since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": since}
        _holder_file(lock).write_text(json.dumps(record))
