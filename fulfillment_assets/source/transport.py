"""The transport of one page: sent and read whole within the page deadline, parsed once.

`PageDeadlineAdapter` is the `requests` adapter of the source's session; `deadline.py` bounds the
connection, the status line, the headers and the body together, and the body is parsed once
(orjson) into a `PageResponse`.
"""

from __future__ import annotations

import io
from typing import Any

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter

from fulfillment_assets.source.deadline import (
    DeadlinePoolManager,
    PageDeadline,
    page_deadline,
)


class PageResponse(requests.Response):
    """A response whose JSON body is parsed once, with orjson: dlt reads it twice a page."""

    _parsed: Any = None

    @classmethod
    def of(cls, response: requests.Response) -> PageResponse:
        page = cls()
        page.__setstate__(response.__getstate__())  # requests' own copy protocol (pickling)
        return page

    def json(self, **kwargs: Any) -> Any:
        if self._parsed is None:
            self._parsed = orjson.loads(self.content)
        return self._parsed


class PageDeadlineAdapter(HTTPAdapter):
    """The transport: a whole page (connect, headers, body) within `page_timeout` seconds.

    requests' own timeout bounds each wait for bytes, not the page: headers or a body dripping a
    byte a second would never time out. Here the page's socket is shut down at the deadline (see
    `deadline`), and the body is read here, chunk by chunk, so the page ends as a read timeout.
    """

    def __init__(self, page_timeout: float, pool_maxsize: int) -> None:
        self.page_timeout = page_timeout
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

    def _send_whole(
        self, request: requests.PreparedRequest, page: PageDeadline, **kwargs: Any
    ) -> requests.Response:
        response = super().send(request, stream=True, **kwargs)
        raw = response.raw
        chunks: list[bytes] = []
        try:
            # read1: whatever one wait brings (read() would wait for all 64 KiB).
            while chunk := raw.read1(65_536, decode_content=False):
                chunks.append(chunk)
        except urllib3.exceptions.ProtocolError as error:
            raise requests.exceptions.ChunkedEncodingError(error, request=request) from None
        except urllib3.exceptions.ReadTimeoutError as error:
            raise requests.exceptions.ReadTimeout(error, request=request) from None
        finally:
            response.close()
        if page.expired:  # a body cut short at the deadline may end like a whole one
            raise requests.exceptions.ReadTimeout("the page was cut at its deadline")
        # The body as read, behind a fresh urllib3 response, so requests builds the rest itself.
        buffered = urllib3.HTTPResponse(
            body=io.BytesIO(b"".join(chunks)),
            headers=raw.headers,
            status=raw.status,
            reason=raw.reason,
            version=raw.version,
            preload_content=False,
            decode_content=True,
        )
        return PageResponse.of(self.build_response(request, buffered))
