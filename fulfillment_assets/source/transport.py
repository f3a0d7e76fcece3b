"""The transport of one page: sent and read whole within the page deadline, parsed once.

`PageDeadlineAdapter` is the `requests` adapter of the source's session; `deadline.py` bounds the
connection, the status line, the headers and the body together; the body is read whole into a
`PageResponse`, which parses it once (orjson).
"""

from __future__ import annotations

import json
import math
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from fulfillment_assets import settings
from fulfillment_assets.masking import KeyMask
from fulfillment_assets.source.deadline import (
    DeadlinePoolManager,
    PageDeadline,
    page_deadline,
)
from fulfillment_assets.source.http import (
    MAX_RETRY_WAIT_SETTING,
    FulfillmentApiError,
    api_origin,
    offset_in,
)
from fulfillment_assets.source.pacing import RateLimitPacer, WaitTooLong, announced_wait
from fulfillment_assets.source.progress import rate_limit_wait_line, retry_line

# dlt's retrying client waits `backoff_factor * 2 ** (attempt - 1)` seconds between attempts
# (tenacity's exponential wait), at most dlt's `request_max_retry_delay` (300 s by default).
MAX_BACKOFF_SECONDS = 300.0
# What dlt's client retries besides the statuses: the transport errors it is built with.
RETRIED_ERRORS = (requests.Timeout, requests.ConnectionError)

# A JSON number of 19 digits or more (2**63 has 19): an integer that may be past 64 bits. Only
# as a value (after `:`, `[` or `,`): a long digit string such as a tracking number is quoted.
_LONG_DIGITS = re.compile(rb"[:\[,]\s*-?\d{19,}\s*[,}\]]")
# The regular expression costs ~200 us a page of 100 records (10 % of a full run); digits mapped
# to `0` and the rest to a space, a run of 19 is found in ~20 us, and only then is it asked.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_NINETEEN_DIGITS = b"0" * 19


def has_long_integer(body: bytes) -> bool:
    """Whether the JSON body holds a number of 19 digits or more as a value."""
    return (
        body.translate(_DIGITS_AS_ZEROS).find(_NINETEEN_DIGITS) >= 0
        and _LONG_DIGITS.search(body) is not None
    )


@dataclass(frozen=True)
class NumberPastDouble:
    """A JSON number no double holds (`1e400`), as the body wrote it: valid JSON, yet every JSON
    parser reads it as infinity. Never loaded: the page check names its record and field."""

    text: str

    def __repr__(self) -> str:
        return self.text


class PageResponse(requests.Response):
    """A response whose body was read whole within the page deadline, and whose JSON is parsed
    once, with orjson: dlt reads it twice a page."""

    body = b""
    _parsed: Any = None
    rate_limit_waits = 0  # the 429s with an announced wait this page waited for
    # Whether the body holds a `NumberPastDouble` (then the page check fails naming it).
    numbers_past_double = False

    @property
    def content(self) -> bytes:  # always bytes: read whole, in `send`
        return self.body

    def json(self, **kwargs: Any) -> Any:
        if self._parsed is None:
            try:
                self._parsed = orjson.loads(self.body)
            except orjson.JSONDecodeError as error:
                if "infinity" not in str(error):
                    raise
                # orjson refuses a number past a double: an integer of 310 digits (which
                # Python's parser reads exactly) or `1e400` (kept as `NumberPastDouble`).
                self._parsed = self._read_exactly(error)
                return self._parsed
            if has_long_integer(self.body):
                # orjson reads an integer past 64 bits as a double: 2**70 and 2**70 + 1 would be
                # one value. A page with such a number is read again by Python's parser, whose
                # integers are exact; orjson has judged it valid JSON.
                self._parsed = json.loads(self.body)
        return self._parsed

    def _read_exactly(self, error: orjson.JSONDecodeError) -> Any:
        """The body by Python's parser, numbers past a double as `NumberPastDouble`; orjson's
        error if the body is not JSON for another reason too."""

        def read_float(text: str) -> float | NumberPastDouble:
            number = float(text)
            if math.isfinite(number):
                return number
            self.numbers_past_double = True
            return NumberPastDouble(text)

        try:
            return json.loads(self.body, parse_float=read_float)
        except (ValueError, RecursionError):
            raise error from None


class PageDeadlineAdapter(HTTPAdapter):
    """The transport: a whole page (connect, headers, body) within `page_timeout` seconds.

    requests' own timeout bounds each wait for bytes, not the page: headers or a body dripping a
    byte a second would never time out. Here the page's socket is shut down at the deadline (see
    `deadline`), and the body is read here, whole, so the page ends as a read timeout.
    """

    def __init__(
        self,
        page_timeout: float,
        pool_maxsize: int,
        max_retry_wait: float = settings.MAX_RETRY_WAIT_SECONDS,
        pacer: RateLimitPacer | None = None,
        backoff_factor: float = settings.BACKOFF_FACTOR,
        where: Callable[[str | None], str] = offset_in,
    ) -> None:
        self.page_timeout = page_timeout
        self.where = where  # which page a URL asks for, in the API's shape
        self.max_retry_wait = max_retry_wait
        self.pacer = pacer or RateLimitPacer(max_retry_wait)
        self.backoff_factor = backoff_factor
        # Per page, across dlt's retries of it (they send the same request again): the waits
        # for an announced rate limit, and the attempts that failed with what dlt retries.
        self._waits: weakref.WeakKeyDictionary[requests.PreparedRequest, int] = (
            weakref.WeakKeyDictionary()
        )
        self._failed: weakref.WeakKeyDictionary[requests.PreparedRequest, int] = (
            weakref.WeakKeyDictionary()
        )
        super().__init__(pool_maxsize=pool_maxsize)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager = DeadlinePoolManager(
            num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs
        )

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        """One page, paced: a 429 that announces its wait (at most `max_retry_wait`) is waited
        for and sent again here, up to `RATE_LIMIT_WAITS` times a page, so the API's announced
        limit does not use up the retries dlt keeps for errors; any other 429 goes to dlt's
        retries (exponential backoff) as before."""
        while True:
            try:
                response = self._paced_send(request, **kwargs)
            except RETRIED_ERRORS as error:
                self._note_failed_attempt(request, type(error).__name__)
                raise
            waits = response.rate_limit_waits = self._waits.get(request, 0)
            wait = announced_wait(response) if response.status_code == 429 else None
            if (
                wait is None
                or wait.seconds > self.max_retry_wait
                or (waits >= settings.RATE_LIMIT_WAITS)
            ):
                # A wait longer than allowed fails the page at once (`raise_for_status`).
                too_long = wait is not None and wait.seconds > self.max_retry_wait
                if response.status_code in settings.RETRY_STATUS_CODES and not too_long:
                    self._note_failed_attempt(request, f"HTTP {response.status_code}")
                return response  # `raise_for_status` names the wait asked and the settings
            self._waits[request] = waits + 1
            rate_limit_wait_line(
                self.where(_url(request)),
                _origin(request),
                str(wait),
                waits + 1,
                settings.RATE_LIMIT_WAITS,
            )
            self.pacer.hold(wait.seconds)

    def _note_failed_attempt(self, request: requests.PreparedRequest, problem: str) -> None:
        """A line for the run's log: the page failed with what dlt retries, and when it will
        try again (dlt's backoff), or that no retry is left."""
        attempt = self._failed.get(request, 0) + 1
        self._failed[request] = attempt
        wait = None
        if attempt <= settings.MAX_RETRIES:
            wait = min(self.backoff_factor * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
        where = self.where(_url(request))
        retry_line(problem, where, _origin(request), attempt, settings.MAX_RETRIES, wait)

    def _paced_send(self, request: requests.PreparedRequest, **kwargs: Any) -> PageResponse:
        try:
            self.pacer.before_send()
        except WaitTooLong as too_long:
            # As a 429 asking for more than the bound: fail now, not sleep past the deadline.
            page = self.where(_url(request))
            raise FulfillmentApiError(
                f"the fulfillment API's rate limit is spent ({too_long.spent} on an earlier "
                f"page) and it asks to wait {too_long.wait} before the page at {page} may be "
                f"asked, longer than max_retry_wait {self.max_retry_wait:g} s: set "
                f"{MAX_RETRY_WAIT_SETTING} above it to wait that long"
            ) from None
        response: PageResponse | None = None
        try:
            response = self._send_within_deadline(request, **kwargs)
            return response
        finally:
            self.pacer.after_response(response)

    def _send_within_deadline(
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> PageResponse:
        with page_deadline(self.page_timeout) as page:
            try:
                return self._send_whole(request, page, **kwargs)
            except requests.exceptions.RequestException:
                if page.expired:
                    raise requests.exceptions.ReadTimeout(
                        f"the page did not arrive whole within {self.page_timeout:g} s",
                        request=request,
                    ) from None
                raise

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> PageResponse:
        """requests' own response building (the hook it offers subclasses), as a `PageResponse`."""
        response = PageResponse()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url.decode() if isinstance(req.url, bytes) else str(req.url)
        extract_cookies_to_jar(response.cookies, req, resp)
        response.request = req
        response.connection = self
        return response

    def _send_whole(
        self, request: requests.PreparedRequest, page: PageDeadline, **kwargs: Any
    ) -> PageResponse:
        response = super().send(request, stream=True, **kwargs)
        assert isinstance(response, PageResponse)  # built by `build_response` above
        try:
            # Blocks until the body is whole, or until the deadline shuts the socket down.
            response.body = response.raw.read(decode_content=True)
        except urllib3.exceptions.ProtocolError as error:
            raise requests.exceptions.ChunkedEncodingError(error, request=request) from None
        except urllib3.exceptions.ReadTimeoutError as error:
            raise requests.exceptions.ReadTimeout(error, request=request) from None
        except urllib3.exceptions.DecodeError as error:
            raise requests.exceptions.ContentDecodingError(error, request=request) from None
        finally:
            response.close()
        if page.expired:  # a body cut short at the deadline may end like a whole one
            raise requests.exceptions.ReadTimeout("the page was cut at its deadline")
        return response


def _url(request: requests.PreparedRequest) -> str | None:
    return request.url.decode() if isinstance(request.url, bytes) else request.url


def _origin(request: requests.PreparedRequest) -> str:
    """Where a page was asked for, for messages: `http.api_origin`, never the query (the key)."""
    return api_origin(_url(request), KeyMask())
