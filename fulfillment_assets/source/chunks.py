"""A full walk in chunks, each committed by a dlt load of its own, and where the walk stands.

dlt commits what one extract yields at its end or not at all (dlt-hub/dlt#215): a walk of
millions of records killed at 90 % would start again from offset 0. So a full walk ends its
extract every `chunk_pages` pages or `chunk_seconds` seconds (whichever comes first, at a page
boundary); the raw asset loads that chunk and records, with the ids it received, the walk's
`WalkPosition` in the destination (`ingest/walks.py`), then runs the next chunk. A run that starts
while a walk is unfinished resumes it there, one page before (the overlap: a listing that moved
since is not skipped past; the merge on `id` makes the repeat harmless).

The walk is judged as one when it ends: the ledger (`completeness.py`) resumes with every id the
walk received, so completeness and deletes are decided over all chunks and runs, never on one.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CHUNK_PAGES_SETTING = "SOURCES__FULFILLMENT__CHUNK_PAGES"
CHUNK_SECONDS_SETTING = "SOURCES__FULFILLMENT__CHUNK_SECONDS"


@dataclass
class ChunkBudget:
    """How much of a walk one load takes: `pages` pages or `seconds` seconds, the first reached."""

    pages: int
    seconds: float
    used: int = 0
    started: float = field(default_factory=time.monotonic)

    def page(self) -> None:
        self.used += 1

    def spent(self) -> bool:
        return self.used >= self.pages or time.monotonic() - self.started >= self.seconds


@dataclass
class WalkPosition:
    """Where a full walk stands after its latest committed chunk, as the destination keeps it."""

    walk_id: str
    started_at: str  # ISO-8601 UTC: a walk older than `max_walk_age_hours` is not resumed
    pass_number: int = 1
    offset: int = 0  # the pass's next offset
    overlap: int = 0  # records before `offset` a resumed walk asks again (its last page)
    pages: int = 0  # over every chunk and run of the walk
    records: int = 0
    chunks: int = 0
    runs: int = 1
    done: bool = False  # the walk reached its end (the ledger's verdict says whether complete)
    ledger: dict[str, Any] = field(default_factory=dict)  # WalkLedger.snapshot()
    paginator: dict[str, Any] = field(default_factory=dict)  # FulfillmentPaginator.snapshot()
    cursor_max: str | None = None  # the newest cursor value received, incremental mode only
    resumed_from: int | None = None  # the offset the current run resumed the walk at
    load_ids: list[str] = field(default_factory=list)  # the loads of the walk's chunks
    # Dropped unfinished (too old, or `resume: false`): its chunks moved dlt's incremental
    # cursor, so the runs until a new walk commits a chunk walk in full (`ingest/walks.py`).
    dropped: bool = False

    @classmethod
    def start(cls) -> WalkPosition:
        now = datetime.now(UTC)
        walk_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        return cls(walk_id=walk_id, started_at=now.isoformat(timespec="seconds"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WalkPosition:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def age_hours(self, now: datetime | None = None) -> float:
        started = datetime.fromisoformat(self.started_at)
        return ((now or datetime.now(UTC)) - started).total_seconds() / 3600

    def describe(self, total: int | None = None) -> str:
        """One line for logs and metadata: the walk, how far it is, in how many chunks and runs."""
        share = f" of {total} ({self.records / total:.0%})" if total else ""
        resumed = "" if self.resumed_from is None else f", resumed at offset {self.resumed_from}"
        return (
            f"walk {self.walk_id}: {self.pages} pages, {self.records} records{share} in "
            f"{self.chunks} chunk(s) over {self.runs} run(s), pass {self.pass_number}{resumed}"
        )


@dataclass
class WalkTracker:
    """The position of the walk a source's chunk belongs to, shared by the walk that moves it
    and the resource that reports it (None for an incremental walk: not chunked)."""

    position: WalkPosition | None = None
