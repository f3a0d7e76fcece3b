"""Read-ahead: the pages after the current one are fetched concurrently, handed out in order.

`ReadAheadSession` is a `requests.Session` that rest_api takes as its client's `session` (a
public parameter). rest_api walks the pages one request at a time through it; once a page
reports its count (`total` of an offset walk, pages or records of a page-number walk), the
session fetches the next pages on its own threads (offsets stepping by the records a page
actually held, page numbers by one), and answers rest_api's request for a page with the one
already fetched. A walk by link or cursor cannot know its next request: it goes page by page.
Results equal the sequential walk. A 429 halves the window; against a fast API only a
few pages are kept in flight. Each fetch goes through dlt's retrying client.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

import requests
from dlt.sources.helpers.requests import Client

from fulfillment_assets import settings
from fulfillment_assets.masking import KeyMask
from fulfillment_assets.source.http import (
    FulfillmentApiError,
    describe_transport_error,
)
from fulfillment_assets.source.shape import ApiShape
from fulfillment_assets.source.transport import PageDeadlineAdapter
from fulfillment_assets.source.workers import DaemonWorkers

logger = logging.getLogger(__name__)


class _PageFetch(NamedTuple):
    request: requests.PreparedRequest
    future: Future[requests.Response]


class _Walk(NamedTuple):
    """What identifies a paginated request across its pages: everything but its position (the
    offset or page number)."""

    method: str | None
    url: str | bytes | None
    params: tuple[tuple[str, Any], ...]
    auth: Any
    offset: int


def _params(request: requests.Request) -> dict[str, Any]:
    """A request's params: requests also takes pairs or a string, rest_api always a dict."""
    return cast("dict[str, Any]", request.params or {})


def _walk_of(request: requests.Request, position_param: str | None) -> _Walk:
    params = _params(request)
    rest = tuple(sorted((k, str(v)) for k, v in params.items() if k != position_param))
    position = params.get(position_param, 0) if position_param else 0
    try:
        at = int(position)
    except (TypeError, ValueError):  # a cursor: no walk of numbers to read ahead in
        at = 0
    return _Walk(request.method, request.url, rest, request.auth, at)


def _with_position(url: str, param: str, position: int) -> str:
    """The page's URL at another position: the `param=` pair replaced, every other byte as
    requests prepared it (the key and the other params stay encoded exactly as they were)."""
    location, hash_mark, fragment = url.partition("#")
    path, _, query = location.partition("?")
    pairs = query.split("&") if query else []
    prefix = f"{param}="
    at = next((i for i, pair in enumerate(pairs) if pair.startswith(prefix)), len(pairs))
    pairs[at : at + 1] = [f"{prefix}{position}"]
    return f"{path}?{'&'.join(pairs)}{hash_mark}{fragment}"


class ReadAheadSession(requests.Session):
    """rest_api's session: fetches later pages ahead of their turn, via dlt's retrying client."""

    def __init__(
        self,
        client: Client,
        adapter: PageDeadlineAdapter,
        mask: KeyMask,
        concurrency: int,
        min_latency: float = settings.READ_AHEAD_MIN_LATENCY_SECONDS,
        *,
        shape: ApiShape,
    ) -> None:
        super().__init__()
        self.shape = shape
        paginator = shape.paginator
        self._position_param = paginator.position_param
        # Offsets step by the records a page held; page numbers by one. A walk by link or
        # cursor is never read ahead.
        self._by_records = paginator.type == "offset"
        self._reads_ahead = paginator.next_request_known
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}
        self._client = client
        self._adapter = adapter
        self.mask = mask
        self._min_latency = min_latency
        self._max_window = max(1, concurrency)
        self.window = self._max_window
        self.latency: float | None = None  # moving average of the API's answer time
        self._lock = threading.Lock()
        self._pending: dict[int, _PageFetch] = {}
        self._handed_out: _PageFetch | None = None
        self._walk: _Walk | None = None  # the walk's last request rest_api prepared
        self._template: requests.PreparedRequest | None = None
        self._send_kwargs: dict[str, Any] = {}
        self._next_offset = 0
        self._stop_offset = 0
        self._step = 0  # offsets: the records a page holds; page numbers: the page size
        self._unit = 0  # how far the position moves a page
        self._workers: DaemonWorkers | None = None
        # No page at or past this offset is fetched ahead: the end of a walk's chunk, whose
        # pages past it the next chunk asks for (None: up to `total`).
        self.fetch_limit: int | None = None

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """A page fetched ahead was prepared then; the walk's other pages are prepared here."""
        walk = _walk_of(request, self._position_param)
        with self._lock:
            same_walk = self._walk is not None and walk[:4] == self._walk[:4]
            fetch = self._pending.pop(walk.offset, None) if same_walk else None
            went_back = self._walk is not None and walk.offset < self._walk.offset
            if fetch is None and (self._pending or walk.offset == 0 or went_back):
                # The walk went elsewhere, or starts (again: another pass): pages fetched ahead
                # are moot, and the plan starts from this page.
                self._drop_pending()
            self._walk, self._handed_out = walk, fetch
        if fetch is not None:
            return fetch.request
        prepared = super().prepare_request(request)
        with self._lock:
            # The pages fetched ahead are copies of this one at their offsets: requests prepares
            # (merges settings, encodes params, applies auth) once a walk, not once a page.
            self._template = prepared
        return prepared

    def merge_environment_settings(
        self,
        url: str,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> dict[str, Any]:
        """The environment's proxy and CA settings (`HTTPS_PROXY`, `NO_PROXY`,
        `REQUESTS_CA_BUNDLE`, ...), read once per scheme and host, not once per page (~0.1 ms)."""
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        origin = urlsplit(url)[:2]
        if origin not in self._environment:
            self._environment[origin] = super().merge_environment_settings(
                url, proxies, stream, verify, cert
            )
        settings_of_origin = self._environment[origin]
        return {**settings_of_origin, "proxies": dict(settings_of_origin["proxies"])}

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with self._lock:
            fetch, self._handed_out = self._handed_out, None
            walk = self._walk
            self._send_kwargs = kwargs
        if fetch is not None and fetch.request is request:
            response = fetch.future.result()
        else:
            response = self._fetch(request, kwargs)
        elapsed = response.elapsed.total_seconds()
        self.latency = elapsed if self.latency is None else 0.8 * self.latency + 0.2 * elapsed
        if walk is not None:
            self._plan(walk.offset, response)
        return response

    def throttle(self) -> None:
        """Called on a 429: fewer pages at once from now on."""
        if self.window > 1:
            self.window = max(1, self.window // 2)
            logger.warning(
                "the API answered 429: fetching %d pages at once from now on", self.window
            )

    def close(self) -> None:
        """Stops fetching ahead; pages still in flight are left to their daemon threads."""
        with self._lock:
            self._drop_pending()
            self._walk = self._template = None
            workers, self._workers = self._workers, None
        if workers is not None:
            workers.stop()
        super().close()

    def _fetch(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any]
    ) -> requests.Response:
        """One page through dlt's retrying session (one per thread), its transport ours."""
        session = self._client.session
        if session.get_adapter("http://") is not self._adapter:
            session.mount("http://", self._adapter)
            session.mount("https://", self._adapter)
        try:
            # Redirects are reported, not followed: the key would go wherever they point.
            return session.send(request, **{**kwargs, "allow_redirects": False})
        except FulfillmentApiError:
            raise
        except requests.RequestException as error:
            failure = error
        # Raised outside the except block, so no exception chain carries the unmasked URL.
        raise FulfillmentApiError(
            describe_transport_error(failure, request, self.mask, self.shape.where, self.shape.path)
        )

    def _plan(self, position: int, response: requests.Response) -> None:
        """After a page: the next ones up to the count the API reports may go ahead: offsets up
        to `total` (inclusive, the empty page), page numbers up to the last page."""
        if self._max_window <= 1 or response.status_code != 200 or not self._reads_ahead:
            return
        body = response.json()
        total, records = self.shape.total_records(body), self.shape.records.get(body)
        received = len(records) if isinstance(records, list) else 0
        with self._lock:
            if not received:
                return
            if not self._by_records:
                last = self.shape.last_page(body, max(self._step, received))
                if last is None:
                    return
                self._step = max(self._step, received)  # the page size, for the last page
                self._next_offset = max(self._next_offset, position + 1)
                self._stop_offset = last
                self._unit = 1
            else:
                if type(total) is not int:
                    return
                if position + received < total:
                    # A page holds what the API serves, maybe fewer than `limit` asked: step by
                    # that.
                    self._step = received
                self._next_offset = max(self._next_offset, position + received)
                self._stop_offset = total
                self._unit = self._step
        self._fill_window()

    def _ahead(self) -> int:
        """Pages in flight beyond the one being processed: a slow API gets the whole window.

        Against a fast API a few keep it busy while pages are processed; more threads would only
        contend for the GIL.
        """
        if (self.latency or 0.0) < self._min_latency:
            return min(settings.READ_AHEAD_FAST_API_PAGES, self.window)
        return self.window

    def _fill_window(self) -> None:
        with self._lock:
            if self._template is None:
                return
            template, kwargs = self._template, self._send_kwargs
            # Up to `total` itself: the empty page there confirms the walk's end.
            stop = self._stop_offset
            if self.fetch_limit is not None:
                stop = min(stop, self.fetch_limit - 1)
            while self._next_offset <= stop and len(self._pending) < self._ahead():
                offset = self._next_offset
                self._next_offset += self._unit or 1
                request = template.copy()
                request.url = _with_position(str(template.url), str(self._position_param), offset)
                if self._workers is None:
                    self._workers = DaemonWorkers(self._max_window)
                future = self._workers.submit(self._fetch, request, kwargs)
                self._pending[offset] = _PageFetch(request, future)

    def _drop_pending(self) -> None:
        for fetch in self._pending.values():
            fetch.future.cancel()
        self._pending.clear()
        self._next_offset = self._stop_offset = self._step = self._unit = 0
