"""A fake fulfillment API whose SHAPE is the test's to choose: how it wants the credential, where
it answers, where the records sit in a page, how pages follow each other; plus faults to inject.

A `Shape` says both what the server does and what the source is told
(`SOURCES__FULFILLMENT__AUTH` / `__ENDPOINT`, JSON in dlt rest_api's own words), so a test of a
shape is: `with serve_shaped_api(shape, monkeypatch) as api:`, run, assert. The server is a real
HTTP server (stdlib) on an ephemeral loopback port; it serves the demo API's records and keeps
every request it got, headers and all, so a test can say where the credential travelled.

JSON paths in a shape (`data_selector`, `total_path`, ...) are dotted names (`payload.orders`):
the subset of dlt's JSONPath an API's shape needs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
import pytest

from fulfillment_assets.demo_api import Dataset, DemoApiOptions
from fulfillment_assets_tests.helpers import TEST_API_KEY

Query = dict[str, list[str]]
# What the API serves when a request does not say how many records it wants.
DEFAULT_PAGE_SIZE = 25
# A dripping body: this many bytes, then a pause (the client's every read gets bytes in time).
DRIP_BYTES = 4
DRIP_INTERVAL = 0.2


def demo_records(count: int, version: int = 0) -> list[dict[str, Any]]:
    """The demo API's records 1..count (about 2 % null customer_id, 1 % null order_status)."""
    return Dataset(DemoApiOptions(records=count, data_version=version)).page(0, count)


def snapshot_rows(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The records in the shape of `helpers.table_snapshot`, in id order."""
    return [
        (
            record["id"],
            record.get("customer_id"),
            record.get("order_status"),
            datetime.fromisoformat(record["updated_at"]),
            record["amount"],
        )
        for record in sorted(records, key=lambda record: record["id"])
    ]


def put(body: dict[str, Any], path: str, value: Any) -> None:
    """Sets `value` at a dotted path in `body`, creating the objects on the way."""
    *parents, name = path.split(".")
    for parent in parents:
        body = body.setdefault(parent, {})
    body[name] = value


def position_token(offset: int) -> str:
    """An opaque cursor for a record position, as APIs hand them out."""
    return base64.urlsafe_b64encode(f"pos:{offset}".encode()).decode().rstrip("=")


def token_position(token: str) -> int:
    padded = token + "=" * (-len(token) % 4)
    try:
        text = base64.urlsafe_b64decode(padded).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ValueError(f"not a cursor of this API: {token!r}") from error
    if not text.startswith("pos:"):
        raise ValueError(f"not a cursor of this API: {token!r}")
    return int(text.removeprefix("pos:"))


def _first(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


@dataclass(frozen=True)
class Auth:
    """How the API wants the credential: an API key in the query or a header, a bearer token, or
    HTTP basic with the key as password. The secret is `SOURCES__FULFILLMENT__API_KEY`."""

    type: Literal["api_key", "bearer", "http_basic"] = "api_key"
    name: str = "api_key"  # api_key: the query parameter or header
    location: Literal["query", "header"] = "query"  # api_key only
    username: str = "shop"  # http_basic only

    def setting(self) -> dict[str, str]:
        """`SOURCES__FULFILLMENT__AUTH`: rest_api's `client.auth` without the secret."""
        if self.type == "api_key":
            return {"type": "api_key", "name": self.name, "location": self.location}
        if self.type == "bearer":
            return {"type": "bearer"}
        return {"type": "http_basic", "username": self.username}

    @property
    def sent_in(self) -> str:
        """Where the credential travels, as `ShapedApi.credential_places` names places."""
        if self.type == "api_key" and self.location == "query":
            return f"query {self.name}"
        return f"header {self.name.lower() if self.type == 'api_key' else 'authorization'}"

    def expected(self, key: str) -> str:
        return f"{self.username}:{key}" if self.type == "http_basic" else key

    def received(self, query: Query, headers: dict[str, str]) -> str | None:
        """The credential the request carries where this API looks for it (headers lowercased):
        the key, the token, or basic's `username:password`."""
        if self.type == "api_key":
            if self.location == "query":
                return _first(query, self.name)
            return headers.get(self.name.lower())
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if self.type == "bearer":
            return value if scheme.lower() == "bearer" else None
        if scheme.lower() != "basic":
            return None
        try:
            return base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class Window:
    """The records one request asks for: from `offset`, at most `size`."""

    offset: int
    size: int


@dataclass(frozen=True)
class PageFacts:
    """What a pagination kind may need to describe a page: the window served, how many records
    it held, the total to report, where the next page starts (None: this is the last), and the
    request's URL without the credential, to build the next page's link from."""

    window: Window
    served: int
    total: int
    next_offset: int | None
    endpoint_url: str
    query: dict[str, str]

    def link(self, position_param: str) -> str | None:
        if self.next_offset is None:
            return None
        query = {**self.query, position_param: position_token(self.next_offset)}
        return f"{self.endpoint_url}?{urlencode(query)}"


class Pagination(Protocol):
    def paginator(self) -> dict[str, Any]:
        """rest_api's `paginator` settings for this kind."""

    def params(self) -> dict[str, Any]:
        """Query parameters every request sends (the page size, where the kind has no own)."""

    def window(self, query: Query, cap: int | None) -> Window:
        """The records a request asks for, at most `cap` a page; ValueError if it makes no sense."""

    def describe(self, body: dict[str, Any], headers: dict[str, str], facts: PageFacts) -> None:
        """Puts what the client pages by (totals, links, cursors) into the page."""


def _capped(size: int, cap: int | None) -> int:
    if size < 1:
        raise ValueError(f"page size {size} is below 1")
    return min(size, cap) if cap else size


@dataclass(frozen=True)
class OffsetPages:
    """`?offset=&limit=` under any names; the total number of records at a path, or none."""

    limit: int = 100
    offset_param: str = "offset"
    limit_param: str = "limit"
    total_path: str | None = "total"

    def paginator(self) -> dict[str, Any]:
        return {
            "type": "offset",
            "limit": self.limit,
            "offset_param": self.offset_param,
            "limit_param": self.limit_param,
            "total_path": self.total_path,
        }

    def params(self) -> dict[str, Any]:
        return {}

    def window(self, query: Query, cap: int | None) -> Window:
        offset = int(_first(query, self.offset_param) or 0)
        if offset < 0:
            raise ValueError(f"{self.offset_param} {offset} is below 0")
        size = int(_first(query, self.limit_param) or DEFAULT_PAGE_SIZE)
        return Window(offset, _capped(size, cap))

    def describe(self, body: dict[str, Any], headers: dict[str, str], facts: PageFacts) -> None:
        if self.total_path:
            put(body, self.total_path, facts.total)


@dataclass(frozen=True)
class PageNumberPages:
    """`?page=&per_page=` under any names, from `base_page`; at most one of the total number of
    pages (dlt's `total_path`) or of records (this project's `total_items_path`) at a path. An
    API capping the page size numbers its pages by the size it serves."""

    page_size: int = 100
    page_size_param: str = "per_page"
    base_page: int = 1
    page_param: str = "page"
    total_pages_path: str | None = None
    total_items_path: str | None = None

    def paginator(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "type": "page_number",
            "base_page": self.base_page,
            "page_param": self.page_param,
        }
        if self.total_items_path:
            settings["total_items_path"] = self.total_items_path
        else:  # null: no total, the walk ends on an empty page
            settings["total_path"] = self.total_pages_path
        return settings

    def params(self) -> dict[str, Any]:
        return {self.page_size_param: self.page_size}

    def window(self, query: Query, cap: int | None) -> Window:
        page = int(_first(query, self.page_param) or self.base_page)
        if page < self.base_page:
            raise ValueError(f"{self.page_param} {page} is below the first page {self.base_page}")
        size = _capped(int(_first(query, self.page_size_param) or DEFAULT_PAGE_SIZE), cap)
        return Window((page - self.base_page) * size, size)

    def describe(self, body: dict[str, Any], headers: dict[str, str], facts: PageFacts) -> None:
        if self.total_pages_path:
            put(body, self.total_pages_path, math.ceil(facts.total / facts.window.size))
        if self.total_items_path:
            put(body, self.total_items_path, facts.total)


@dataclass(frozen=True)
class _PositionedPages:
    """Pages that start where a token of the API's own says (absent: the first record)."""

    page_size: int = 100
    page_size_param: str = "limit"

    def position_param(self) -> str:
        """The query parameter the token travels in (in the link the API builds)."""
        return "after"

    def params(self) -> dict[str, Any]:
        return {self.page_size_param: self.page_size}

    def window(self, query: Query, cap: int | None) -> Window:
        token = _first(query, self.position_param())
        offset = token_position(token) if token else 0
        size = _capped(int(_first(query, self.page_size_param) or DEFAULT_PAGE_SIZE), cap)
        return Window(offset, size)


@dataclass(frozen=True)
class JsonLinkPages(_PositionedPages):
    """The next page's absolute URL in the body at `next_url_path`; null on the last page."""

    next_url_path: str = "next"

    def paginator(self) -> dict[str, Any]:
        return {"type": "json_link", "next_url_path": self.next_url_path}

    def describe(self, body: dict[str, Any], headers: dict[str, str], facts: PageFacts) -> None:
        put(body, self.next_url_path, facts.link(self.position_param()))


@dataclass(frozen=True)
class HeaderLinkPages(_PositionedPages):
    """The next page's URL in a `Link: <url>; rel="next"` header; none on the last page."""

    def paginator(self) -> dict[str, Any]:
        return {"type": "header_link"}

    def describe(self, body: dict[str, Any], headers: dict[str, str], facts: PageFacts) -> None:
        link = facts.link(self.position_param())
        if link is not None:
            headers["Link"] = f'<{link}>; rel="next"'


@dataclass(frozen=True)
class CursorPages(_PositionedPages):
    """An opaque cursor in the body at `cursor_path`, sent back as `cursor_param`; null at the
    end."""

    cursor_path: str = "meta.next_cursor"
    cursor_param: str = "cursor"

    def position_param(self) -> str:
        return self.cursor_param

    def paginator(self) -> dict[str, Any]:
        return {
            "type": "cursor",
            "cursor_path": self.cursor_path,
            "cursor_param": self.cursor_param,
        }

    def describe(self, body: dict[str, Any], headers: dict[str, str], facts: PageFacts) -> None:
        next_offset = facts.next_offset
        put(body, self.cursor_path, None if next_offset is None else position_token(next_offset))


@dataclass(frozen=True)
class Shape:
    """An API's shape: its credential, its path, where its records sit, how it pages. The
    defaults are the seed's API (`?api_key=`, `/v1/fulfillment`, `data`, offset pages, `total`)."""

    auth: Auth = Auth()
    path: str = "/v1/fulfillment"
    data_selector: str = "data"
    pages: Pagination = OffsetPages()

    def endpoint_setting(self) -> dict[str, Any]:
        """`SOURCES__FULFILLMENT__ENDPOINT`: rest_api's endpoint keys for this shape."""
        endpoint: dict[str, Any] = {
            "path": self.path,
            "data_selector": self.data_selector,
            "paginator": self.pages.paginator(),
        }
        if params := self.pages.params():
            endpoint["params"] = params
        return endpoint

    def environment(self) -> dict[str, str]:
        """The shape's settings as the source reads them (dlt config: JSON for dicts)."""
        return {
            "SOURCES__FULFILLMENT__AUTH": json.dumps(self.auth.setting()),
            "SOURCES__FULFILLMENT__ENDPOINT": json.dumps(self.endpoint_setting()),
        }


@dataclass(frozen=True)
class Faults:
    """What goes wrong; the defaults mean nothing does. Positions are a page's first record
    (page-number and link pages too), so one fault reads the same in every shape."""

    status: int | None = None  # answered with a JSON error instead of the page
    status_times: int | None = None  # that many requests fail so; None: every one
    status_at: int | None = None  # only the page starting there; None: every page
    max_page_size: int | None = None  # serves at most this many records, whatever is asked
    reported_total: int | None = None  # the total it reports, if not the truth
    drip_at: int | None = None  # the page starting there comes DRIP_BYTES every DRIP_INTERVAL
    echo_key: bool = False  # error bodies (401, `status`) repeat the credential received
    latency: float = 0.0  # seconds before every answer


@dataclass
class ShapedRequest:
    """One request as the API got it, headers as sent, logged when it arrives: `status` and
    `finished` are None while it is answered; `offset` is the window's first record (None when
    refused before paging)."""

    path: str
    query: Query
    headers: dict[str, str]
    started: float
    status: int | None = None
    offset: int | None = None
    finished: float | None = None


@dataclass
class Answer:
    """What the API answers one request; `drip`: the body comes a few bytes at a time."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    offset: int | None = None
    drip: bool = False

    @classmethod
    def error(cls, status: int, message: str) -> Answer:
        return cls(status, orjson.dumps({"error": message}))


class ShapedApi:
    """`records` served in `shape`, `faults` injected; start with `with ShapedApi(shape) as api`.
    `records`, `key` and `faults` may be swapped between runs (`inject` resets the fault count)."""

    def __init__(
        self, shape: Shape, records: list[dict[str, Any]] | None = None, key: str = TEST_API_KEY
    ) -> None:
        self.shape = shape
        self.records = demo_records(250) if records is None else records
        self.key = key
        self.faults = Faults()
        self.requests: list[ShapedRequest] = []
        self._failed = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, **faults: Any) -> None:
        """Swaps the faults for these (none: no fault) and forgets how many failed so far."""
        with self._lock:
            self.faults = Faults(**faults)
            self._failed = 0

    def __enter__(self) -> ShapedApi:
        # A short poll: stopping waits for it, once per test.
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # ends drips and latencies at once
        self._server.shutdown()
        self._server.server_close()

    def credential_places(self, request: ShapedRequest) -> set[str]:
        """Everywhere the key travelled in a request: `query <param>`, `header <name>`
        (lowercased; basic's base64 decoded), `path`."""
        places = {"path"} if self.key in request.path else set()
        for name, values in request.query.items():
            if any(self.key in value for value in values):
                places.add(f"query {name}")
        for name, value in request.headers.items():
            scheme, _, encoded = value.partition(" ")
            if scheme.lower() == "basic":
                with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                    value = base64.b64decode(encoded, validate=True).decode()
            if self.key in value:
                places.add(f"header {name.lower()}")
        return places

    def answer(self, path: str, query: Query, headers: dict[str, str]) -> Answer:
        """The answer to `GET path?query` (headers lowercased), faults applied."""
        shape, faults = self.shape, self.faults
        if path != shape.path:
            return Answer.error(404, f"no such path: {path}")
        credential = shape.auth.received(query, headers)
        if credential != shape.auth.expected(self.key):
            said = f": {credential}" if faults.echo_key and credential else ""
            return Answer.error(401, f"missing or wrong credentials{said}")
        try:
            window = shape.pages.window(query, faults.max_page_size)
        except ValueError as error:
            return Answer.error(400, str(error))
        if self._fails(window.offset):
            said = f" serving {credential}" if faults.echo_key else ""
            answer = Answer.error(faults.status or 500, f"internal error{said}")
            answer.offset = window.offset
            return answer
        served = self.records[window.offset : window.offset + window.size]
        end = window.offset + len(served)
        body: dict[str, Any] = {}
        put(body, shape.data_selector, served)
        answer = Answer(200, b"", offset=window.offset, drip=faults.drip_at == window.offset)
        credential_param = shape.auth.name if shape.auth.sent_in.startswith("query") else None
        facts = PageFacts(
            window=window,
            served=len(served),
            total=len(self.records) if faults.reported_total is None else faults.reported_total,
            next_offset=end if served and end < len(self.records) else None,
            endpoint_url=self.url + shape.path,
            query={k: v[0] for k, v in query.items() if k != credential_param},
        )
        shape.pages.describe(body, answer.headers, facts)
        answer.body = orjson.dumps(body)
        return answer

    def _fails(self, offset: int) -> bool:
        faults = self.faults
        with self._lock:
            if faults.status is None or faults.status_at not in (None, offset):
                return False
            if faults.status_times is not None and self._failed >= faults.status_times:
                return False
            self._failed += 1
            return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                query = parse_qs(url.query, keep_blank_values=True)
                headers = dict(self.headers.items())
                # Logged on arrival: a test sees the requests still being answered (a drip).
                logged = ShapedRequest(url.path, query, headers, time.monotonic())
                api.requests.append(logged)
                if api.faults.latency:
                    api._stopping.wait(api.faults.latency)
                answer = api.answer(url.path, query, {k.lower(): v for k, v in headers.items()})
                logged.status, logged.offset = answer.status, answer.offset
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the client gave up: so be it
                    if answer.drip:
                        self._drip(answer.body)
                    else:
                        self.wfile.write(answer.body)
                logged.finished = time.monotonic()

            def _drip(self, body: bytes) -> None:
                for start in range(0, len(body), DRIP_BYTES):
                    if api._stopping.wait(DRIP_INTERVAL):
                        return
                    self.wfile.write(body[start : start + DRIP_BYTES])
                    self.wfile.flush()

            def log_message(self, *args: object) -> None:  # the URL may hold the key
                pass

        return Handler


@contextlib.contextmanager
def serve_shaped_api(
    shape: Shape,
    monkeypatch: pytest.MonkeyPatch,
    records: list[dict[str, Any]] | None = None,
) -> Iterator[ShapedApi]:
    """The API of `shape`, and the source configured for it: base URL, the test key, and the
    shape's `SOURCES__FULFILLMENT__AUTH` / `__ENDPOINT`."""
    with ShapedApi(shape, records) as api:
        monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", api.url)
        monkeypatch.setenv("SOURCES__FULFILLMENT__API_KEY", api.key)
        for name, value in shape.environment().items():
            monkeypatch.setenv(name, value)
        yield api
