"""Progress of the page walk: pages, records, records/s and an ETA; and each retry of a page.

Logged at INFO on the `fulfillment_assets.progress` logger: the walk at most every few seconds
and once at the end of the walk (the ETA needs the API's `total`), each retry and each wait the
API asked for as it happens. The ingest step writes these lines into the run's event log
(`ingest/run_log.py`); `scripts/demo.sh` prints them.
"""

from __future__ import annotations

import logging
import time

from fulfillment_assets import settings

logger = logging.getLogger("fulfillment_assets.progress")


def _page(where: str | None) -> str:
    return f"the page at {where}" if where is not None else "a page"


def retry_line(
    problem: str, where: str | None, host: str, attempt: int, retries: int, wait: float | None
) -> None:
    """A page failed with `problem` (a retried status or transport error) on its `attempt`;
    `wait`: the backoff before the next attempt, None when no retry is left (the failure that
    follows names the settings). `where`: which page (`offset 200`, `page 3`)."""
    page = _page(where)
    if wait is None:
        logger.info(
            "%s from %s: %s, no retry left (%d of %d used)", page, host, problem, retries, retries
        )
        return
    logger.info(
        "%s from %s: %s; retry %d of %d in %.1f s", page, host, problem, attempt, retries, wait
    )


def rate_limit_wait_line(where: str | None, host: str, wait: str, waits: int, limit: int) -> None:
    """The API answered 429 and announced how long to wait: the walk waits, then asks again."""
    page = _page(where)
    logger.info(
        "%s from %s: HTTP 429, the API asks to wait %s; waiting (%d of at most %d such waits)",
        page,
        host,
        wait,
        waits,
        limit,
    )


class PageProgress:
    """Counts pages and records of one walk and logs them every PROGRESS_LOG_SECONDS.

    A walk resumed in another chunk or run counts on from where it stood (`pages`, `offset`);
    its rate is this chunk's."""

    def __init__(self, interval: float | None = None, *, pages: int = 0, offset: int = 0) -> None:
        self.interval = settings.PROGRESS_LOG_SECONDS if interval is None else interval
        self.started = time.monotonic()
        self.logged = self.started
        self.pages = pages
        self.records = offset
        self._offset = offset

    def page(
        self,
        received: int,
        records: int,
        total: int | None,
        *,
        last: bool,
        chunk_ended: bool = False,
    ) -> None:
        """One page of `received` records arrived; `records` so far, `last` if the walk (or, with
        `chunk_ended`, its chunk) ended."""
        self.pages += 1
        self.records = records
        now = time.monotonic()
        if not last and now - self.logged < self.interval:
            return
        self.logged = now
        elapsed = max(now - self.started, 1e-9)
        rate = (records - self._offset) / elapsed
        pages = f"{self.pages} page" + ("" if self.pages == 1 else "s")
        line = f"{pages}, {records} records, {rate:,.0f} records/s"
        if last and not chunk_ended:
            logger.info("fetched %s in %.1f s: done", line, elapsed)
            return
        if total:
            eta = (total - records) / rate if rate else float("inf")
            line += f", {records / total:.0%} of {total}, ETA {eta:.0f} s"
        if chunk_ended:
            logger.info("fetched %s: chunk done, loading it", line)
            return
        logger.info("fetched %s", line)
