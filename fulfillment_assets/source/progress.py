"""Progress of the page walk, for the terminal: pages, records, records/s and an ETA.

Logged at INFO on the `fulfillment_assets.progress` logger at most every few seconds, and once at
the end of the walk; the ETA needs the API's `total`.
"""

from __future__ import annotations

import logging
import time

from fulfillment_assets import settings

logger = logging.getLogger("fulfillment_assets.progress")


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
        line = f"{self.pages} pages, {records} records, {rate:,.0f} records/s"
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
