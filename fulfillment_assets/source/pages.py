"""The page check and the paginator: every page is what the API's contract says, and none is missed.

- `check_page`: a 200 whose body breaks the contract fails, naming the page's offset and what was
  wrong, with at most a short masked excerpt of the body;
- `FulfillmentPaginator`: offset pages that advance by the records actually received (an API may
  serve fewer than `limit` asks); the walk ends on an empty page only, and the count it ends with
  must equal the API's `total` when it reports one.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable
from typing import Any

import orjson
import requests
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator

from fulfillment_assets import settings
from fulfillment_assets.display import shown, shown_id
from fulfillment_assets.masking import KeyMask
from fulfillment_assets.source.api_message import the_api_says
from fulfillment_assets.source.chunks import ChunkBudget
from fulfillment_assets.source.completeness import WalkLedger
from fulfillment_assets.source.http import (
    FulfillmentPageError,
    excerpt,
)
from fulfillment_assets.source.progress import PageProgress
from fulfillment_assets.source.shape import ENDPOINT_SETTING, MISSING, ApiShape
from fulfillment_assets.source.transport import NumberPastDouble

_INT64_MAX = 2**63 - 1
# A record's id, as the walk's ledger counts it (both pagination styles).
RECORD_ID = operator.itemgetter("id")
# An empty page where records were expected is asked again this many times before it ends the
# walk: a lagging replica may answer `{"data": []}` once and be whole on the next request, and
# without `total` nothing else tells that empty page from the listing's end.
EMPTY_PAGE_RETRIES = 2
EMPTY_PAGE_WAIT_SECONDS = 1.0

logger = logging.getLogger(__name__)


def check_page(
    response: requests.Response,
    *args: Any,
    mask: KeyMask,
    shape: ApiShape,
    text_without_nul: bool = False,
    **kwargs: Any,
) -> None:
    """Response hook: fails on a body that breaks the contract (records where the shape's
    `data_selector` points, a count where its paginator's total path points); parses it once.

    With `text_without_nul` (a destination that cannot store the character, PostgreSQL), a
    value holding NUL fails the page, naming the record and the field."""
    if response.status_code >= 300:
        return  # `raise_for_status` speaks for those

    def bad(what: str) -> FulfillmentPageError:
        where = shape.where(response.request.url)  # read from the URL only when it fails
        said = the_api_says(body, mask)  # an error envelope's own words, masked and bounded
        return FulfillmentPageError(f"the page at {where} {what}{said}")

    body: Any = None

    try:
        body = response.json()
    except orjson.JSONDecodeError as error:
        if "depth limit" in str(error) or "recursion" in str(error):
            raise bad(
                "is nested deeper than 1024 levels, more than a JSON parser accepts; "
                "the API sent a malformed page"
            ) from None
        content_type = response.headers.get("content-type", "no content-type")
        body_excerpt = excerpt(response.content, mask)
        # The parser's reason (e.g. `unexpected character`) says what a valid-looking body
        # broke; it quotes no body text, only a position. (A number past a double, valid JSON,
        # is read by `PageResponse` and named with its record below.)
        reason = str(error).split(": line ", 1)[0][:120]
        raise bad(f"is not JSON ({content_type}: {reason}); body: {body_excerpt!r}") from None
    selector = shape.records.path
    records = shape.records.find(body)
    if records is MISSING:
        if selector == "data":
            raise bad("has no `data` field; expected {'data': [...], 'total': N}")
        raise bad(
            f"has no `{selector}` field, where endpoint.data_selector says the records are; "
            f"check {ENDPOINT_SETTING}"
        )
    if not isinstance(records, list):
        raise bad(f"has `{selector}` of type {type(records).__name__}; expected a list of records")
    if getattr(response, "numbers_past_double", False):
        _raise_for_first_number_past_double(records, bad)
    if not _all_ids_fit(records):
        _raise_for_first_bad_record(records, bad)
    for count, path in (
        (shape.total_records(body), shape.paginator.total_records),
        (shape.total_pages(body), shape.paginator.total_pages),
    ):
        if count is not None and (type(count) is not int or count < 0):
            assert path is not None  # a count is read only where a path says
            raise bad(f"has `{path.path}` {str(count)[:40]!r}; expected a non-negative integer")
    # JSON writes NUL only as this escape: one C-level search of the body, the records only then.
    if text_without_nul and b"\\u0000" in response.content:
        _raise_for_first_nul(records, bad)


def _all_ids_fit(records: list[Any]) -> bool:
    """Every record an object with an `id`: an integer a 64-bit column holds, or non-empty text
    (the seed does not state the type: `ColumnTypes.ids_typed` makes them one). C-level passes."""
    if not records:
        return True
    if set(map(type, records)) != {dict}:
        return False
    ids = [record.get("id") for record in records]
    kinds = set(map(type, ids))
    if kinds == {int}:
        return min(ids) >= -_INT64_MAX - 1 and max(ids) <= _INT64_MAX
    if kinds == {str}:
        return "" not in ids
    return False  # mixed, or another type: the record-by-record pass names the first one


def _raise_for_first_bad_record(
    records: list[Any], bad: Callable[[str], FulfillmentPageError]
) -> None:
    """Names the first record that breaks the contract, and why."""
    for position, record in enumerate(records):
        if type(record) is not dict:
            raise bad(f"has record #{position} of type {type(record).__name__}; expected object")
        record_id = record.get("id")
        if record_id is None:
            raise bad(f"has record #{position} without an `id`")
        if type(record_id) is str:
            if not record_id:
                raise bad(f"has record #{position} with an empty `id`")
            continue
        if type(record_id) is not int:
            # The merge key: integers or text, nothing a merge cannot compare exactly.
            raise bad(
                f"has record #{position} with `id` {str(record_id)[:40]!r} of type "
                f"{type(record_id).__name__}; ids are integers or text"
            )
        if not -_INT64_MAX - 1 <= record_id <= _INT64_MAX:
            raise bad(
                f"has record #{position} with `id` {record_id}, beyond the 64-bit integer "
                "column `id` (bigint) holds"
            )


def _path_of(value: Any, path: str, found: Callable[[Any], bool]) -> tuple[str, Any] | None:
    """Where in a value the first leaf `found` accepts is (`note`, `shipment.carrier`), and the
    leaf; or None."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return (path, value) if found(value) else None
    for key, item in items:
        inner = _path_of(item, f"{path}.{key}" if path else str(key), found)
        if inner is not None:
            return inner
    return None


def _first_in_records(
    records: list[Any], found: Callable[[Any], bool]
) -> tuple[Any, str, Any] | None:
    """The first record's id, field path and leaf that `found` accepts, or None."""
    for record in records:
        if type(record) is dict:
            where = _path_of(record, "", found)
            if where is not None:
                return record.get("id"), *where
    return None


def _raise_for_first_number_past_double(
    records: list[Any], bad: Callable[[str], FulfillmentPageError]
) -> None:
    """Names the first record holding a number no double holds (outside the records such a
    number is no record's value: the count check names one in `total`)."""
    first = _first_in_records(records, lambda value: isinstance(value, NumberPastDouble))
    if first is not None:
        record_id, path, number = first
        raise bad(
            f"has record `id` {shown_id(record_id)!r} whose field `{shown(path, 60)}` holds the "
            f"number {shown(number.text, 40)}, past what a double holds (a JSON parser reads it "
            "as infinity); nothing was loaded. Have the API send such a number as text"
        )


def _raise_for_first_nul(records: list[Any], bad: Callable[[str], FulfillmentPageError]) -> None:
    first = _first_in_records(records, lambda value: isinstance(value, str) and "\x00" in value)
    if first is not None:
        record_id, path, _ = first
        raise bad(
            f"has record `id` {shown_id(record_id)!r} whose field `{shown(path, 60)}` holds a NUL "
            "character (\\x00), which the PostgreSQL destination cannot store in text or JSON; "
            "nothing was loaded. Have the API fix the record, or load into a destination that "
            "keeps it (DuckDB)"
        )


class EmptyPageRecheck:
    """An empty page where records were expected, asked again up to `retries` times, `wait`
    seconds apart: a lagging replica may answer `{"data": []}` once and be whole on the next
    request. Each walk says when its empty page is suspect (`ask_again`)."""

    def __init__(
        self, retries: int = EMPTY_PAGE_RETRIES, wait: float = EMPTY_PAGE_WAIT_SECONDS
    ) -> None:
        self.retries = retries
        self.wait = wait
        self.asked = 0  # in the current pass

    def ask_again(self, where: str, suspect: bool) -> bool:
        """Whether to ask the page at `where` again (after the wait): suspect, and asked fewer
        than `retries` times in this pass."""
        if not suspect or self.asked >= self.retries:
            return False
        self.asked += 1
        logger.warning(
            "the page at %s is empty after a full page: asking again (%d of %d) in %.1f s",
            where,
            self.asked,
            self.retries,
            self.wait,
        )
        time.sleep(self.wait)
        return True


class FulfillmentPaginator(OffsetPaginator):
    """Offset pages of `limit` that advance by the records received and end on an empty page.

    Unlike dlt's default it never needs `total` and never quotes the body. A `total` that moves
    between pages is a listing that changes while it is walked, normal for a busy API: the walk
    goes on to the empty page, and the `ledger` (`completeness.py`) judges what it received. A
    `total` that stands still is held to its word: a walk that ends with another count, or
    receives records past it, fails (a partial load would look complete). Pages that never end
    fail at `max_records`.
    """

    def __init__(
        self,
        limit: int,
        max_records: int,
        empty_page_retries: int = EMPTY_PAGE_RETRIES,
        empty_page_wait: float = EMPTY_PAGE_WAIT_SECONDS,
        ledger: WalkLedger | None = None,
        shape: ApiShape | None = None,
        tail_chase_pages: int = settings.TAIL_CHASE_PAGES,
    ) -> None:
        options = shape.paginator.options if shape is not None else {}
        # The total is read here (`shape.total_records`), where a lying one is judged.
        super().__init__(
            limit=limit,
            offset=int(options.get("offset", 0)),
            offset_param=str(options.get("offset_param", "offset")),
            limit_param=str(options.get("limit_param", "limit")),
            total_path=None,
            stop_after_empty_page=True,
        )
        self.shape = shape
        self.max_records = max_records
        self.ledger = ledger or WalkLedger()
        self.recheck = EmptyPageRecheck(empty_page_retries, empty_page_wait)
        self.total: int | None = None
        self.total_moved = False
        self._first_total: int | None = None
        self.progress = PageProgress()
        self._largest_page = 0
        self._last_received = 0
        self.tail_chase_pages = tail_chase_pages
        self._slivers_in_a_row = 0  # pages of at most a quarter of the largest, one after another
        # A walk in chunks (`chunks.py`): the current chunk's budget, whether it ended the pass
        # early, and what a resumed pass starts with.
        self.budget: ChunkBudget | None = None
        self.chunk_ended = False
        self.pages_received = 0  # over the passes of one chunk (the source resets it)
        self._resumed: dict[str, Any] | None = None
        self._overlap_pending = False

    def start_at(
        self, offset: int, snapshot: dict[str, Any] | None = None, *, overlap: bool = False
    ) -> None:
        """The next pass starts at `offset`; a resumed pass with the counters of `snapshot`,
        its first page (`overlap`) one the walk received before."""
        self.initial_value = offset
        self._resumed = snapshot
        self._overlap_pending = overlap

    @property
    def last_received(self) -> int:
        """The records of the latest page: what a resumed walk asks again (the overlap)."""
        return self._last_received

    def snapshot(self) -> dict[str, Any]:
        """What a pass resumed in another chunk goes on with (`start_at`)."""
        return {
            "total": self.total,
            "total_moved": self.total_moved,
            "first_total": self._first_total,
            "largest_page": self._largest_page,
            "last_received": self._last_received,
            "slivers_in_a_row": self._slivers_in_a_row,
            "pages": self.progress.pages,
        }

    def init_request(self, request: requests.Request) -> None:
        resumed, self._resumed = self._resumed or {}, None
        self.total = resumed.get("total")
        self.total_moved = bool(resumed.get("total_moved", False))
        self._first_total = resumed.get("first_total")
        self.progress = PageProgress(pages=int(resumed.get("pages", 0)), offset=self.initial_value)
        self._largest_page = int(resumed.get("largest_page", 0))
        self._last_received = int(resumed.get("last_received", 0))
        self._slivers_in_a_row = int(resumed.get("slivers_in_a_row", 0))
        self.recheck.asked = 0
        self.chunk_ended = False
        super().init_request(request)

    def _ask_again(self, offset: int, received: int, total: int | None) -> bool:
        """An empty page that may be a lagging replica's answer: asked again, boundedly.

        Suspect: it follows a page as large as any of the walk (a partial page is the listing's
        end), and no `total` says the walk is done (with one, the empty page at `total` is the
        expected end and costs nothing extra)."""
        suspect = (
            not received
            and self._largest_page > 0
            and self._last_received >= self._largest_page
            and (total is None or offset < total)
        )
        return self.recheck.ask_again(f"offset {offset}", suspect)

    def update_state(self, response: requests.Response, data: list[Any] | None = None) -> None:
        offset = self.current_value
        received = len(data or ())
        body = response.json()
        total = self.shape.total_records(body) if self.shape else body.get("total")
        if self._ask_again(offset, received, total):
            self._has_next_page = True  # the same offset again
            return
        short_page = 0 < received < self._largest_page
        sliver = 0 < received <= self._largest_page // 4
        self._slivers_in_a_row = self._slivers_in_a_row + 1 if sliver else 0
        self._last_received = received
        self._largest_page = max(self._largest_page, received)
        if total is not None:
            # The listing moved under the walk: its counts no longer bind it (the ledger judges).
            self.total_moved |= self.total is not None and total != self.total
            self.total = total
            self._first_total = total if self._first_total is None else self._first_total
        # `check_page` has made sure every record has an `id`.
        overlap, self._overlap_pending = self._overlap_pending, False
        self.ledger.page(list(map(RECORD_ID, data or ())), total, overlap=overlap)
        self.current_value = offset + received
        self._has_next_page = received > 0
        if short_page and self.total_moved and self.current_value >= (self._first_total or 0):
            # A growing listing's tail: past the count the walk started with, a short page ends
            # it. Waiting for an empty page would chase the orders created while it walks (each
            # page a few), for as long as the shop sells; the next run loads those.
            self._has_next_page = False
        elif total is None and 0 < self.tail_chase_pages <= self._slivers_in_a_row:
            # Without a total: a listing that stands still has one short page, then the empty
            # one; slivers one after another are a tail growing while it is walked (a
            # newest-first shop selling pushes its oldest orders there, a few a page). The
            # walk ends here rather than chase it for as long as the shop sells; the ledger
            # hears of it, so the walk is not proven complete and marks no deletes.
            self._has_next_page = False
            self.ledger.tail_grew()
        self.pages_received += 1
        if self.budget is not None:
            self.budget.page()
            # Only the empty page at `total` left: it confirms the end in this chunk, not in a
            # load of its own.
            if self._has_next_page and self.budget.spent() and self.current_value != self.total:
                # The chunk is loaded; the walk goes on from `current_value` in the next one.
                self.chunk_ended, self._has_next_page = True, False
        self.progress.page(
            received,
            self.current_value,
            self.total,
            last=not self._has_next_page,
            chunk_ended=self.chunk_ended,
        )
        if self.total is not None and not self.total_moved:  # a total that stands still binds
            if self.current_value > self.total:
                raise FulfillmentPageError(
                    f"the API reports total {self.total} but served {self.current_value} "
                    f"records (the page at offset {offset} goes past it): its total is wrong; "
                    "nothing was loaded"
                )
            if not received and offset != self.total:
                raise FulfillmentPageError(
                    f"the API reports total {self.total} but served {offset} records before an "
                    f"empty page at offset {offset}: records are missing; nothing was loaded"
                )
        at_total = self.current_value == self.total  # only the empty page is left to confirm
        if received and self.current_value >= self.max_records and not at_total:
            raise FulfillmentPageError(
                f"the API still has pages after {self.max_records} records (offset "
                f"{self.current_value}); raise max_records if that many are expected"
            )
