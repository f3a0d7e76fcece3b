"""The walks of APIs that do not page by offset: page numbers, a next link in the body or the
`Link` header, a body cursor. Each is rest_api's own paginator, subclassed to keep the walk's
promises (`pages.FulfillmentPaginator` keeps them for offsets):
- every page's ids go to the `ledger`, which judges the walk complete or not;
- progress lines as for offsets; `max_records` bounds a walk that never ends;
- a count the API reports and that stands still binds: a walk that ends short of it, or goes past
  it, fails rather than load a part as the whole;
- a link or cursor the walk already followed fails (a loop would never end), and a link to
  another host is refused: the key would travel there.

Such walks are one chunk: where a resumed walk would start is a link or cursor the API may not
honour later, so `chunk_pages` / `chunk_seconds` apply to offset walks only.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    BaseReferencePaginator,
    HeaderLinkPaginator,
    JSONLinkPaginator,
    JSONResponseCursorPaginator,
    PageNumberPaginator,
)

from fulfillment_assets.source.chunks import ChunkBudget
from fulfillment_assets.source.completeness import WalkLedger
from fulfillment_assets.source.http import FulfillmentPageError
from fulfillment_assets.source.pages import (
    EMPTY_PAGE_RETRIES,
    EMPTY_PAGE_WAIT_SECONDS,
    RECORD_ID,
    EmptyPageRecheck,
)
from fulfillment_assets.source.progress import PageProgress
from fulfillment_assets.source.shape import ENDPOINT_SETTING, ApiShape

logger = logging.getLogger(__name__)


class _WalkAccount:
    """What every walk keeps besides its paginator's place: counts, the ledger, progress."""

    def _start_account(self, shape: ApiShape, max_records: int, ledger: WalkLedger) -> None:
        self.shape = shape
        self.max_records = max_records
        self.ledger = ledger
        self.progress = PageProgress()
        self.records = 0
        self.pages_received = 0
        self.last_received = 0
        # The chunk interface of the offset walk (`chunks.py`): such walks are one chunk.
        self.budget: ChunkBudget | None = None
        self.chunk_ended = False
        self.total: int | None = None
        self.total_moved = False

    def start_at(
        self, position: int, snapshot: dict[str, Any] | None = None, *, overlap: bool = False
    ) -> None:
        """The next pass starts at the first page (a walk of links starts nowhere else)."""

    def snapshot(self) -> dict[str, Any]:
        return {"pages": self.progress.pages}

    def _reset_account(self) -> None:
        self.progress = PageProgress()
        self.records = self.last_received = 0
        self.total, self.total_moved = None, False

    def _account(
        self, response: requests.Response, data: list[Any] | None, *, more: bool, total: Any
    ) -> None:
        """One page received: the ledger, the counts and the progress line, and the bounds."""
        received = len(data or ())
        if type(total) is int:
            self.total_moved |= self.total is not None and total != self.total
            self.total = total
        else:
            total = None
        self.ledger.page(list(map(RECORD_ID, data or ())), total)
        self.records += received
        self.last_received = received
        self.pages_received += 1
        self.progress.page(received, self.records, self.total, last=not more)
        where = self.shape.where(response.request.url)
        if self.total is not None and not self.total_moved:
            if self.records > self.total:
                raise FulfillmentPageError(
                    f"the API reports total {self.total} but served {self.records} records (the "
                    f"page at {where} goes past it): its total is wrong; nothing was loaded"
                )
            if not more and self.records != self.total:
                raise FulfillmentPageError(
                    f"the API reports total {self.total} but served {self.records} records "
                    f"before the walk ended at {where}: records are missing; nothing was loaded"
                )
        if more and self.records >= self.max_records:
            raise FulfillmentPageError(
                f"the API still has pages after {self.max_records} records (at {where}); raise "
                "max_records if that many are expected"
            )


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1  # not a port: no host the walk started on
    return parts.scheme, parts.hostname, port


class PageNumberWalk(_WalkAccount, PageNumberPaginator):
    """Page numbers from `base_page`: ends on an empty page, or after the last page the API
    counts (`total_path`, pages); `total_items_path` (records) binds like an offset `total`."""

    def __init__(
        self,
        shape: ApiShape,
        max_records: int,
        ledger: WalkLedger,
        empty_page_retries: int = EMPTY_PAGE_RETRIES,
        empty_page_wait: float = EMPTY_PAGE_WAIT_SECONDS,
    ) -> None:
        options = shape.paginator.options
        self.recheck = EmptyPageRecheck(empty_page_retries, empty_page_wait)
        self._largest_page = 0
        super().__init__(
            base_page=int(options["base_page"]),
            page=int(options["page"]),
            page_param=str(options["page_param"]),
            total_path=None,  # read here, where a count that lies is judged
            stop_after_empty_page=True,
        )
        self._start_account(shape, max_records, ledger)
        self._first_page_size = 0

    def init_request(self, request: requests.Request) -> None:
        self._reset_account()
        self._first_page_size = self._largest_page = self.recheck.asked = 0
        super().init_request(request)

    def _ask_again(self, page: int, received: int, last: int | None) -> bool:
        """An empty page after a full one, before the count says the pages end, may be a lagging
        replica's answer: asked again, boundedly (as an offset walk does, `pages.py`). Without a
        count nothing else tells it from the listing's end, and taking it for the end would mark
        every order after it deleted."""
        suspect = (
            not received
            and self._largest_page > 0
            and self.last_received >= self._largest_page
            and (last is None or page < last or self.shape.paginator.total_pages is not None)
        )
        return self.recheck.ask_again(self.shape.where(f"?{self.param_name}={page}"), suspect)

    def update_state(self, response: requests.Response, data: list[Any] | None = None) -> None:
        body = response.json()
        received = len(data or ())
        page = self.current_value
        self._first_page_size = self._first_page_size or received
        last = self.shape.last_page(body, self._first_page_size)
        if self._ask_again(page, received, last):
            self._has_next_page = True  # the same page again
            return
        self._largest_page = max(self._largest_page, received)
        more = received > 0 and (last is None or page < last)
        if not received and last is not None and page < last and self.total is None:
            # Pages counted, no records counted: an empty page before the last one.
            raise FulfillmentPageError(
                f"the page at {self.shape.where(response.request.url)} is empty but the API "
                f"counts pages up to {last}: records are missing; nothing was loaded"
            )
        self._account(response, data, more=more, total=self.shape.total_records(body))
        self._has_next_page = more
        if more:
            self.current_value = page + 1


class _ReferenceWalk(_WalkAccount, BaseReferencePaginator):
    """A walk that follows what each page names: fails on a loop, never leaves the API's host."""

    _followed: set[str]
    _origin: tuple[str, str | None, int | None] | None = None

    def _start_references(self) -> None:
        self._followed = set()
        self._origin = None

    @property
    def current_value(self) -> int:
        """Records received: the walk's position as the source records it."""
        return self.records

    def init_request(self, request: requests.Request) -> None:
        self._reset_account()
        self._followed = set()
        self._origin = None
        self._next_reference = None  # a later pass starts at the first page again
        self._has_next_page = True

    def _origin_of(self, response: requests.Response) -> tuple[str, str | None, int | None]:
        """The scheme, host and port the walk started on: its first page's."""
        if self._origin is None:
            self._origin = _origin(str(response.request.url))
        return self._origin

    def _judge_reference(self, response: requests.Response, reference: str | None) -> None:
        if reference is None:
            return
        where = self.shape.where(response.request.url)
        if reference in self._followed:
            raise FulfillmentPageError(
                f"the page at {where} names a next page the walk already fetched: its pages "
                "loop and the walk would never end; nothing was loaded"
            )
        self._followed.add(reference)

    def _account_reference(
        self, response: requests.Response, data: list[Any] | None, reference: str | None
    ) -> None:
        self._judge_reference(response, reference)
        self._account(response, data, more=reference is not None, total=None)


class _LinkWalk(_ReferenceWalk):
    """A walk that follows the URL each page names (`_link_of`: in the body or a header)."""

    def _link_of(self, response: requests.Response) -> Any:
        raise NotImplementedError

    def update_state(self, response: requests.Response, data: list[Any] | None = None) -> None:
        link = self._check_link(response, self._link_of(response))
        self._account_reference(response, data, link)
        self._next_reference = link

    def _check_link(self, response: requests.Response, link: Any) -> str | None:
        if link is None or link == "":
            return None
        if not isinstance(link, str):
            raise FulfillmentPageError(
                f"the page at {self.shape.where(response.request.url)} names its next page as "
                f"{type(link).__name__}, expected a URL: check endpoint.paginator in "
                f"{ENDPOINT_SETTING}"
            )
        absolute = urljoin(str(response.request.url), link)
        parts = urlsplit(absolute)
        if _origin(absolute) != self._origin_of(response):
            raise FulfillmentPageError(
                f"the page at {self.shape.where(response.request.url)} links its next page on "
                f"another host ({parts.scheme}://{parts.hostname}); the walk does not follow it, "
                "so the API key is not sent there; nothing was loaded"
            )
        return absolute


class JsonLinkWalk(_LinkWalk, JSONLinkPaginator):
    """The next page's URL in the body (`next_url_path`); ends when it is absent or null."""

    def __init__(self, shape: ApiShape, max_records: int, ledger: WalkLedger) -> None:
        super().__init__(next_url_path=str(shape.paginator.options["next_url_path"]))
        self._start_account(shape, max_records, ledger)
        self._start_references()

    def _link_of(self, response: requests.Response) -> Any:
        reference = self.shape.paginator.reference
        assert reference is not None  # a json_link shape reads its link at next_url_path
        return reference.get(response.json())


class HeaderLinkWalk(_LinkWalk, HeaderLinkPaginator):
    """The next page's URL in the `Link` header (`rel="next"`); ends without one."""

    def __init__(self, shape: ApiShape, max_records: int, ledger: WalkLedger) -> None:
        super().__init__(links_next_key=str(shape.paginator.options["links_next_key"]))
        self._start_account(shape, max_records, ledger)
        self._start_references()

    def _link_of(self, response: requests.Response) -> Any:
        return response.links.get(self.links_next_key, {}).get("url")


class CursorWalk(_ReferenceWalk, JSONResponseCursorPaginator):
    """The next page's cursor in the body (`cursor_path`), sent as `cursor_param`; ends when it
    is absent, null or empty."""

    def __init__(self, shape: ApiShape, max_records: int, ledger: WalkLedger) -> None:
        options = shape.paginator.options
        super().__init__(
            cursor_path=str(options["cursor_path"]), cursor_param=str(options["cursor_param"])
        )
        self._start_account(shape, max_records, ledger)
        self._start_references()

    def update_state(self, response: requests.Response, data: list[Any] | None = None) -> None:
        reference = self.shape.paginator.reference
        assert reference is not None
        cursor = reference.get(response.json())
        if cursor is not None and not isinstance(cursor, str | int):
            raise FulfillmentPageError(
                f"the page at {self.shape.where(response.request.url)} has a cursor of type "
                f"{type(cursor).__name__}; expected text or a number: check "
                f"endpoint.paginator.cursor_path in {ENDPOINT_SETTING}"
            )
        cursor = str(cursor) if cursor not in (None, "") else None
        self._account_reference(response, data, cursor)
        self._next_reference = cursor


def reference_walk(shape: ApiShape, max_records: int, ledger: WalkLedger) -> BasePaginator:
    """The walk of a page-number, link or cursor shape."""
    kinds: dict[str, Any] = {
        "page_number": PageNumberWalk,
        "json_link": JsonLinkWalk,
        "header_link": HeaderLinkWalk,
        "cursor": CursorWalk,
    }
    walk: BasePaginator = kinds[shape.paginator.type](shape, max_records, ledger)
    return walk
