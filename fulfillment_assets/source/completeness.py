"""Whether a walk received every record the API listed, judged from what the walk itself saw.

Offset pages over a listing that moves while it is walked (orders created, updated in a listing
sorted by `updated_at`, removed) shift under the offsets: a record can be received twice, and
another skipped. Neither the seed nor a real API promises a listing that stands still, so the walk
measures itself, pass by pass (`WalkLedger`):
- with `total` reported: the distinct ids received (over every pass of the walk) against the
  smallest `total` a page of the latest pass reported. Records created during a pass raise
  `total` after it started; the smallest is the count the pass could be expected to see whole;
- without `total`: a pass that received no record twice saw a listing that did not shift under it
  (or shifted only past its end), and a pass that brought no id unseen by the passes before it
  found nothing missing.

An incomplete pass is walked again (`max_walk_passes` in all, the union of ids counts); records
an earlier pass already received are not yielded again. When the last pass is still incomplete,
everything received is loaded and the walk reports how many records may be missing: it marks no
deletes and its cursor is no proof (see `incremental.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

MAX_WALK_PASSES_SETTING = "SOURCES__FULFILLMENT__MAX_WALK_PASSES"
TAIL_CHASE_PAGES_SETTING = "SOURCES__FULFILLMENT__TAIL_CHASE_PAGES"


@dataclass(frozen=True)
class WalkVerdict:
    """The judgement of a walk after its latest pass, as the run's metadata reports it."""

    complete: bool
    passes: int
    distinct_ids: int
    received_twice: int
    # The smallest `total` the latest pass reported, None without one.
    total: int | None
    # Whether `total` changed between the pages of any pass: the listing moved.
    total_moved: bool
    # How many records the walk may have missed: the shortfall against `total`, or without it
    # the records received twice in the latest pass (each a sign of one shifted past).
    possibly_missing: int
    # Without `total`: the latest pass ended at a tail that kept growing (`pages.py`).
    tail_grew: bool = False

    @property
    def worth_another_pass(self) -> bool:
        """Incomplete, and another pass could find what this one missed: a pass that only
        chased a growing tail, receiving nothing twice, missed nothing that a pass could find."""
        return not self.complete and not (self.tail_grew and not self.received_twice)

    def explain(self) -> str:
        """One sentence for the run's log and the check: what was measured, what it means."""
        seen = f"{self.distinct_ids} distinct ids in {self.passes} pass(es)"
        if self.total is not None:
            measured = f"{seen} against a total of {self.total}"
        else:
            measured = f"{seen}, {self.received_twice} records received twice in the last pass"
        if self.tail_grew:
            measured += ", its end growing while it was walked (no total to end it)"
        if self.complete:
            return f"the walk is complete: {measured}"
        if self.tail_grew and not self.possibly_missing:
            return (
                f"the walk cannot prove it received every record: {measured}; everything "
                "received was loaded, no row was marked deleted (a listing without total that "
                "grows while it is walked is never proven whole). It ended after pages of a "
                "few records one after another; if the API's pages vary that much in size, "
                f"raise {TAIL_CHASE_PAGES_SETTING} (0: only an empty page ends a walk)"
            )
        return (
            f"the walk may have missed up to {self.possibly_missing} records: {measured} (the "
            "listing moved while it was walked); everything received was loaded, no row was "
            f"marked deleted. More passes: {MAX_WALK_PASSES_SETTING}"
        )

    def as_state(self) -> dict[str, Any]:
        """The verdict as the walk's `last_run` in dlt's resource state keeps it."""
        return {
            "walk_complete": self.complete,
            "walk_passes": self.passes,
            "distinct_ids": self.distinct_ids,
            "records_received_twice": self.received_twice,
            "total_reported": self.total,
            "total_moved": self.total_moved,
            "records_possibly_missing": self.possibly_missing,
            "tail_grew": self.tail_grew,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WalkVerdict | None:
        """The verdict `as_state` kept; None for a walk recorded before walks were judged."""
        if "walk_passes" not in state:
            return None
        return cls(
            complete=bool(state["walk_complete"]),
            passes=int(state["walk_passes"]),
            distinct_ids=int(state["distinct_ids"]),
            received_twice=int(state["records_received_twice"]),
            total=state["total_reported"],
            total_moved=bool(state["total_moved"]),
            possibly_missing=int(state["records_possibly_missing"]),
            tail_grew=bool(state.get("tail_grew", False)),
        )


class WalkLedger:
    """The ids a walk received, pass by pass, and what its pages reported.

    The paginator tells it each page (`page`) before dlt yields the page's records; `is_new`
    then says whether a record of a later pass was already received by an earlier one.
    """

    def __init__(self) -> None:
        self.start_walk()

    def start_walk(self) -> None:
        self.passes = 0
        self.ids: set[Any] = set()  # every pass's, the union
        self._earlier_passes: set[Any] = set()
        self._pass_ids: set[Any] = set()
        self._pass_new_ids = 0
        self._received_twice = 0
        self._smallest_total: int | None = None
        self._total_moved = False
        self._last_total: int | None = None
        self._tail_grew = False

    def start_pass(self) -> None:
        self.passes += 1
        self._earlier_passes = set(self.ids)
        self._pass_ids = set()
        self._pass_new_ids = 0
        self._received_twice = 0
        self._smallest_total = None
        self._last_total = None
        self._tail_grew = False

    def tail_grew(self) -> None:
        """The pass ended at a tail that kept growing (no `total`): it proves nothing whole."""
        self._tail_grew = True

    def snapshot(self) -> dict[str, Any]:
        """The counters a walk committed in chunks resumes with (`restore`); the ids it received
        are kept apart, in the destination (`ingest/walks.py`)."""
        return {
            "passes": self.passes,
            "pass_new_ids": self._pass_new_ids,
            "received_twice": self._received_twice,
            "smallest_total": self._smallest_total,
            "total_moved": self._total_moved,
            "last_total": self._last_total,
            "tail_grew": self._tail_grew,
        }

    def restore(self, snapshot: dict[str, Any], ids: Iterable[Any]) -> None:
        """Where a walk stood after its last committed chunk: its counters and every id it
        received. Resumed within its first pass, the pass goes on; a later pass starts again
        (`start_pass`), its earlier passes being every id received."""
        self.start_walk()
        self.ids = set(ids)
        self.passes = int(snapshot.get("passes", 0))
        self._pass_new_ids = int(snapshot.get("pass_new_ids", 0))
        self._received_twice = int(snapshot.get("received_twice", 0))
        self._smallest_total = snapshot.get("smallest_total")
        self._total_moved = bool(snapshot.get("total_moved", False))
        self._last_total = snapshot.get("last_total")
        self._tail_grew = bool(snapshot.get("tail_grew", False))

    def page(self, ids: list[Any], total: int | None, *, overlap: bool = False) -> None:
        """One page's ids (in order) and the `total` it reported. An `overlap` page is one a
        resumed walk asks again on purpose: its repeats are no sign of a moving listing."""
        before_union = len(self.ids)
        self.ids.update(ids)
        new = len(self.ids) - before_union
        self._pass_new_ids += new
        if overlap:
            pass  # asked again on purpose: no repeat counts
        elif self.passes <= 1:
            # The first pass's ids are the union: one set, not two (a full run's hot path).
            self._received_twice += len(ids) - new
        else:
            before = len(self._pass_ids)
            self._pass_ids.update(ids)
            self._received_twice += len(ids) - (len(self._pass_ids) - before)
        if total is not None:
            if self._last_total is not None and total != self._last_total:
                self._total_moved = True
            self._last_total = total
            if self._smallest_total is None or total < self._smallest_total:
                self._smallest_total = total

    def is_new(self, record: dict[str, Any]) -> bool:
        """Whether no earlier pass of this walk received the record's id."""
        return record.get("id") not in self._earlier_passes

    def verdict(self) -> WalkVerdict:
        total = self._smallest_total
        if total is not None:
            missing = max(total - len(self.ids), 0)
            complete = missing == 0
        else:
            # Without total: no shift seen, or a later pass found nothing new.
            complete = not self._tail_grew and (
                self._received_twice == 0 or (self.passes > 1 and not self._pass_new_ids)
            )
            missing = 0 if complete else self._received_twice
        return WalkVerdict(
            complete=complete,
            passes=self.passes,
            distinct_ids=len(self.ids),
            received_twice=self._received_twice,
            total=total,
            total_moved=self._total_moved,
            possibly_missing=missing,
            tail_grew=self._tail_grew,
        )
