"""The read-ahead's fetching threads."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import requests


class DaemonWorkers:
    """A few daemon threads: a page stuck in flight never keeps a stopping process alive.

    (ThreadPoolExecutor's threads are joined at interpreter exit, so SIGTERM would wait for them.)
    """

    def __init__(self, count: int) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._count = count
        for number in range(count):
            name = f"fulfillment-page-{number}"
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def submit(self, fn: Callable[..., requests.Response], *args: Any) -> Future[requests.Response]:
        future: Future[requests.Response] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
                future.set_exception(error)

        self._jobs.put(job)
        return future

    def stop(self) -> None:
        for _ in range(self._count):
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()
