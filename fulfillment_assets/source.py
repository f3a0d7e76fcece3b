"""The fulfillment API as a dlt source: the seed's rest_api configuration plus a thin function.

What this module adds to the seed, and why:
- a retrying session with exactly the seed's policy (429/500/502/503/504, factor 2, 3 retries);
- a page check that turns every bad answer into an error naming the page's offset and what was
  wrong, with at most a short redacted excerpt of the body (never the key, never the whole body);
- an offset paginator that stops on `total` when the API sends it and on a short page otherwise,
  and refuses a `total` that changes mid-run or pages that never end;
- read-ahead: once `total` is known and the API is slow, the next pages are fetched
  concurrently and handed out in order;
- records become Arrow tables of 10,000 with the declared column types, so dlt skips per-row
  normalization and loads parquet; a value of another type goes to a variant column
  (`customer_id__v_bigint`), as dlt's normalizer would do, for the schema check to report.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from ipaddress import ip_address
from itertools import chain, islice
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import dlt
import orjson
import pyarrow as pa
import requests
from dlt.common import jsonpath
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources

from fulfillment_assets import settings

logger = logging.getLogger(__name__)
API_KEY_SETTING = (
    "SOURCES__FULFILLMENT__API_KEY (or api_key under [sources.fulfillment] in .dlt/secrets.toml)"
)
BASE_URL_SETTING = (
    "SOURCES__FULFILLMENT__BASE_URL (or base_url under [sources.fulfillment] in .dlt/config.toml)"
)
_SECRET_IN_URL = re.compile(r"(api_key=)[^&\s'\"#]*", re.IGNORECASE)
_OFFSET_IN_URL = re.compile(r"[?&]offset=(\d+)")
_EXCERPT_CHARS = 120


class FulfillmentApiError(Exception):
    """The fulfillment API could not be read; the message says where and why, without the key."""


class FulfillmentHttpError(requests.HTTPError, FulfillmentApiError):
    """An HTTP error status. Subclasses HTTPError so dlt's retry still sees the status code."""


class FulfillmentPageError(FulfillmentApiError, ValueError):
    """A 200 answer whose body breaks the API's contract."""


def redact(text: str, api_key: str | None = None) -> str:
    """Masks `api_key=...` in URLs, and the key itself wherever else it appears."""
    text = _SECRET_IN_URL.sub(r"\1***", text)
    if api_key:
        text = text.replace(api_key, "***")
    return text


def _excerpt(response: requests.Response) -> str:
    text = " ".join(response.content[:400].decode("utf-8", "replace").split())
    return redact(text[:_EXCERPT_CHARS] + ("..." if len(text) > _EXCERPT_CHARS else ""))


def _offset_of(url: str | None) -> int | None:
    found = _OFFSET_IN_URL.search(url or "")
    return int(found.group(1)) if found else None


def _http_error(response: requests.Response) -> FulfillmentHttpError:
    status, offset = response.status_code, _offset_of(response.request.url)
    where = f"GET {settings.ENDPOINT_PATH} at offset {offset}"
    if status in (401, 403):
        what = (
            f"the fulfillment API rejected the API key (HTTP {status}) on {where}: "
            f"set {API_KEY_SETTING} to a valid key"
        )
    elif status == 404:
        what = (
            f"the fulfillment API has no {settings.ENDPOINT_PATH} here (HTTP 404): "
            f"check {BASE_URL_SETTING}"
        )
    elif status in settings.RETRY_STATUS_CODES:
        what = (
            f"the fulfillment API answered HTTP {status} on {where}, "
            f"still failing after {settings.MAX_RETRIES} retries"
        )
    else:
        what = f"the fulfillment API refused {where} with HTTP {status}"
    excerpt = _excerpt(response)
    return FulfillmentHttpError(
        f"{what}; body: {excerpt!r}" if excerpt else what, response=response
    )


def check_page(
    response: requests.Response,
    *args: Any,
    on_rate_limit: Callable[[], None] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Response hook: fails on an error status or a body that breaks the contract.

    The body is parsed once, with orjson, and handed to dlt through `response.json`.
    """
    if response.status_code >= 400:
        if response.status_code == 429 and on_rate_limit is not None:
            on_rate_limit()
        raise _http_error(response)
    offset = _offset_of(response.request.url)

    def bad(what: str) -> FulfillmentPageError:
        return FulfillmentPageError(f"the page at offset {offset} {what}")

    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        content_type = response.headers.get("content-type", "no content-type")
        return_excerpt = _excerpt(response)
        raise bad(f"is not JSON ({content_type}); body: {return_excerpt!r}") from None
    if not isinstance(body, dict) or "data" not in body:
        raise bad("has no `data` field; expected {'data': [...], 'total': N}")
    records = body["data"]
    if not isinstance(records, list):
        raise bad(f"has `data` of type {type(records).__name__}; expected a list of records")
    for position, record in enumerate(records):
        if type(record) is not dict:
            raise bad(f"has record #{position} of type {type(record).__name__}; expected object")
        record_id = record.get("id")
        if record_id is None:
            raise bad(f"has record #{position} without an `id`")
        if type(record_id) is not int:
            # The merge key: a table cannot hold two types of it.
            raise bad(f"has record #{position} with `id` {str(record_id)[:40]!r}; ids are integers")
    total = body.get("total")
    if total is not None and (type(total) is not int or total < 0):
        raise bad(f"has `total` {str(total)[:40]!r}; expected a non-negative integer")
    response.json = lambda *a, **k: body  # type: ignore[method-assign]
    return response


class PageReadAhead:
    """Fetches the pages after the current one concurrently once `total` is known.

    rest_api walks offsets one request at a time; this sits in the session's `prepare_request`
    and `send`, so the walk stays rest_api's own while up to `concurrency` later pages are already
    in flight. Pages are handed out in offset order, so results equal the sequential walk. A 429
    halves the window. Against a fast API (answers within `min_latency`) it keeps only a few pages
    in flight.
    """

    def __init__(
        self,
        prepare: Callable[[requests.Request], requests.PreparedRequest],
        send: Callable[..., requests.Response],
        concurrency: int,
        min_latency: float = settings.READ_AHEAD_MIN_LATENCY_SECONDS,
    ) -> None:
        self._prepare = prepare
        self._send = send
        self._min_latency = min_latency
        self.latency: float | None = None  # moving average of the API's answer time
        self._max_window = max(1, concurrency)
        self.window = self._max_window
        self._lock = threading.Lock()
        self._pending: dict[int, _PageFetch] = {}
        # The fetch whose prepared request rest_api holds now and sends next.
        self._handed_out: _PageFetch | None = None
        self._pool: ThreadPoolExecutor | None = None
        # The request rest_api walks (its offset left out), as sent, with the send's kwargs.
        self._walk: tuple[Any, ...] | None = None
        self._template: tuple[requests.PreparedRequest, dict[str, Any]] | None = None
        self._next_offset = 0
        self._stop_offset = 0
        self._limit = settings.PAGE_LIMIT

    def __deepcopy__(self, memo: dict[int, Any]) -> PageReadAhead:
        # rest_api deep-copies its config to validate it; the copy must share this one's state.
        return self

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """A page fetched ahead was prepared then; preparing it again costs ~0.3 ms a page."""
        walk = _walk_of(request)
        offset = (request.params or {}).get("offset")
        with self._lock:
            fetch = self._pending.pop(offset, None) if walk == self._walk else None
            if fetch is None:
                self._walk = walk
            self._handed_out = fetch
        return fetch.request if fetch is not None else self._prepare(request)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with self._lock:
            fetch, self._handed_out = self._handed_out, None
            if fetch is None or fetch.request is not request:
                fetch = None
                self._template = (request, kwargs)
        response = fetch.future.result() if fetch is not None else self._send(request, **kwargs)
        elapsed = response.elapsed.total_seconds()
        self.latency = elapsed if self.latency is None else 0.8 * self.latency + 0.2 * elapsed
        self._fill_window()
        return response

    def plan(self, next_offset: int, stop_offset: int, limit: int) -> None:
        """Pages from `next_offset` below `stop_offset` may be fetched ahead of their turn."""
        with self._lock:
            if self._max_window <= 1:
                return
            self._next_offset = max(self._next_offset, next_offset)
            self._stop_offset, self._limit = stop_offset, limit
        self._fill_window()

    def throttle(self) -> None:
        """Called on a 429: fewer pages at once from now on."""
        if self.window > 1:
            self.window = max(1, self.window // 2)
            logger.warning(
                "the API answered 429: fetching %d pages at once from now on", self.window
            )

    def close(self) -> None:
        with self._lock:
            fetches = list(self._pending.values())
            if self._handed_out is not None:
                fetches.append(self._handed_out)
            self._pending.clear()
            self._handed_out = None
            self._walk = None
            self._next_offset = self._stop_offset = 0
            pool, self._pool = self._pool, None
        for fetch in fetches:
            fetch.future.cancel()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _ahead(self) -> int:
        """Pages to keep in flight beyond the one being processed.

        Against a fast API a few are enough to keep the API busy while pages are processed; more
        threads would only contend for the GIL. A slow API gets the whole window.
        """
        if (self.latency or 0.0) < self._min_latency:
            return min(settings.READ_AHEAD_FAST_API_PAGES, self.window)
        return self.window

    def _fill_window(self) -> None:
        with self._lock:
            if self._template is None or self._walk is None:
                return
            template, kwargs = self._template
            offset_at = _OFFSET_IN_URL.search(template.url or "")
            if offset_at is None:
                return
            while self._next_offset < self._stop_offset and len(self._pending) < self._ahead():
                offset = self._next_offset
                self._next_offset += self._limit
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._max_window, "fulfillment-page")
                request = template.copy()
                # The template's URL with another offset: what prepare_url would build, ~20x
                # cheaper than running it again.
                url = template.url or ""
                request.url = f"{url[: offset_at.start(1)]}{offset}{url[offset_at.end(1) :]}"
                future = self._pool.submit(self._send, request, **kwargs)
                self._pending[offset] = _PageFetch(request, future)


class _PageFetch(NamedTuple):
    request: requests.PreparedRequest
    future: Future[requests.Response]


def _walk_of(request: requests.Request) -> tuple[Any, ...]:
    """What identifies a paginated request across its pages: everything but the offset."""
    params = {k: v for k, v in (request.params or {}).items() if k != "offset"}
    return (request.method, request.url, params, request.headers, request.auth, request.hooks)


class FulfillmentPaginator(OffsetPaginator):
    """Offset pages of `limit`: stops on `total`, or on a short or empty page without it.

    Unlike dlt's default it never needs `total`, never quotes the body, refuses a `total` that
    moves mid-run (the pages would overlap or skip records) and pages that never end.
    """

    def __init__(self, limit: int, max_records: int, read_ahead: PageReadAhead) -> None:
        super().__init__(limit=limit, total_path=None, stop_after_empty_page=True)
        self.max_records = max_records
        self.read_ahead = read_ahead
        self.total: int | None = None

    def init_request(self, request: requests.Request) -> None:
        self.total = None
        super().init_request(request)

    def update_state(self, response: requests.Response, data: list[Any] | None = None) -> None:
        offset = self.current_value
        total = response.json().get("total")
        if total is not None:
            if self.total is not None and total != self.total:
                self.read_ahead.close()
                raise FulfillmentPageError(
                    f"the page at offset {offset} reports total {total}, earlier pages "
                    f"{self.total}: the data changed while paging; run again"
                )
            self.total = total
        self.current_value = offset + self.limit
        if self.total is not None:
            self._has_next_page = self.current_value < self.total
            if self._has_next_page and not data:
                raise FulfillmentPageError(
                    f"the page at offset {offset} is empty but the API reports total {self.total}"
                )
        else:
            self._has_next_page = len(data or ()) >= self.limit
        if self._has_next_page and self.current_value >= self.max_records:
            self.read_ahead.close()
            raise FulfillmentPageError(
                f"the API still has pages after {self.max_records} records (offset "
                f"{self.current_value}); raise max_records if that many are expected"
            )
        if not self._has_next_page:
            self.read_ahead.close()
        elif self.total is not None:
            self.read_ahead.plan(self.current_value, min(self.total, self.max_records), self.limit)


def build_session(
    base_url: str,
    api_key: str,
    request_timeout: float,
    backoff_factor: float,
    read_ahead_pages: int,
) -> tuple[requests.Session, PageReadAhead]:
    """dlt's retrying session with the seed's policy, read-ahead, and errors without the key."""
    session = Client(
        request_timeout=request_timeout,
        raise_for_status=False,
        status_codes=settings.RETRY_STATUS_CODES,
        request_max_attempts=1 + settings.MAX_RETRIES,
        request_backoff_factor=backoff_factor,
        respect_retry_after_header=True,
    ).session
    # requests reads proxy and CA settings from the environment on every request (~1 ms each);
    # read them once, for the one host this session talks to.
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    session.trust_env = False
    retrying_send = session.send

    def send_without_key_in_errors(
        request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        try:
            return retrying_send(request, **kwargs)
        except FulfillmentApiError:
            raise
        except requests.RequestException as error:
            failure = error
        # Raised outside the except block, so no exception chain carries the unredacted URL.
        raise FulfillmentApiError(_describe_transport_error(failure, request, api_key))

    read_ahead = PageReadAhead(
        session.prepare_request, send_without_key_in_errors, read_ahead_pages
    )
    session.prepare_request = read_ahead.prepare_request  # type: ignore[method-assign]
    session.send = read_ahead.send  # type: ignore[method-assign]
    return session, read_ahead


def _describe_transport_error(
    error: requests.RequestException, request: requests.PreparedRequest, api_key: str
) -> str:
    kind = {
        requests.exceptions.ConnectTimeout: "connecting timed out",
        requests.exceptions.ReadTimeout: "no answer within the request timeout",
        requests.exceptions.ChunkedEncodingError: "the connection dropped mid-body",
        requests.exceptions.ConnectionError: "could not connect",
    }
    reason = next((text for cls, text in kind.items() if isinstance(error, cls)), "request failed")
    detail = redact(str(error), api_key)[:200]
    return (
        f"{reason} on GET {settings.ENDPOINT_PATH} at offset {_offset_of(request.url)} "
        f"after {1 + settings.MAX_RETRIES} attempts ({redact(request.url or '')}): {detail}"
    )


def check_base_url(base_url: str, allow_insecure_http: bool) -> str:
    """The key travels in the query string: plain http is for loopback unless opted in."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FulfillmentApiError(
            f"base_url {redact(base_url)!r} is not an http(s) URL: check {BASE_URL_SETTING}"
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise FulfillmentApiError(
            f"base_url {redact(base_url)!r} is plain http on a non-loopback host, so the API key "
            "would travel in clear text: use https, or set SOURCES__FULFILLMENT__"
            "ALLOW_INSECURE_HTTP=true to accept that risk"
        )
    return base_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


# Python types each dlt data type accepts from JSON; anything else is a type drift.
_NONE_TYPE = type(None)
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "bigint": (int,),
    "double": (float, int),
    "bool": (bool,),
    "text": (str,),
    "timestamp": (str,),
    "json": (dict, list),
}
_DLT_TYPE_OF: dict[type, str] = {
    int: "bigint",
    float: "double",
    bool: "bool",
    str: "text",
    dict: "json",
    list: "json",
}
_ARROW_TYPE_OF: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "json": pa.string(),  # JSON text; the column hint makes it JSON in the destination
}
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_DECLARED_TYPES: dict[str, str] = {
    name: str(hints["data_type"])
    for name, hints in {**settings.CONTRACT_COLUMNS, **settings.DOCUMENTED_COLUMNS}.items()
}


def page_to_arrow(page: list[dict[str, Any]]) -> pa.Table:
    """Records as an Arrow table with the declared column types.

    A value of another type than its column's goes to a variant column `<name>__v_<type>`, as
    dlt's normalizer does for rows, so a type drift in the API is kept and visible to the checks.
    Nested objects and lists become JSON text.
    """
    names = list(page[0]) if page else []
    if page and set().union(*page).difference(names):
        # Rare: fields that only some records have, kept in order of first appearance.
        names = list(dict.fromkeys(chain.from_iterable(page)))
    columns = _declared_columns(page, [n for n in names if n in _DECLARED_TYPES])
    if columns is None:  # a value of another type: column by column, drift to variants
        columns = {}
        for name in names:
            columns.update(_typed_column(page, name))
    else:
        for name in names:
            if name not in _DECLARED_TYPES:
                columns.update(_typed_column(page, name))
    return pa.Table.from_pydict(columns)


# What the documented columns convert to in one C-level pass (timestamps as text, parsed after);
# JSON columns go column by column.
_FAST_ARROW_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "double": pa.float64(),
    "text": pa.string(),
    "timestamp": pa.string(),
}


def _declared_columns(page: list[dict[str, Any]], names: list[str]) -> dict[str, pa.Array] | None:
    """The documented columns in one C-level conversion, or None if any value does not fit.

    pyarrow refuses text where a number belongs and a number where text belongs, but it turns a
    float into an integer and a bool into 1.0 silently: numeric columns other than `id` (whose
    type the page check enforces) get their value types checked first.
    """
    fast = {
        name: _FAST_ARROW_TYPES[_DECLARED_TYPES[name]]
        for name in names
        if _DECLARED_TYPES[name] in _FAST_ARROW_TYPES
    }
    for name, arrow_type in fast.items():
        if pa.types.is_string(arrow_type) or name == "id":
            continue
        accepted = _ACCEPTS[_DECLARED_TYPES[name]]
        if not _all_of_types([record.get(name) for record in page], accepted):
            return None
    try:
        table = pa.Table.from_pylist(page, schema=pa.schema(list(fast.items())))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    columns: dict[str, pa.Array] = {}
    for name in names:
        if name not in fast:
            typed = _typed_column(page, name)
            if set(typed) != {name}:
                return None
            columns[name] = typed[name]
            continue
        column = table.column(name).combine_chunks()
        if _DECLARED_TYPES[name] == "timestamp":
            try:
                column = column.cast(_TIMESTAMP)
            except pa.ArrowInvalid:
                return None
        columns[name] = column
    return columns


def _all_of_types(values: list[Any], accepted: tuple[type, ...]) -> bool:
    """Whether every value is None or of an accepted type (one C-level pass over the values)."""
    return all(t in accepted or t is _NONE_TYPE for t in set(map(type, values)))


def _typed_column(page: list[dict[str, Any]], name: str) -> dict[str, pa.Array]:
    """One column, values of another type than its declared (or first seen) type in variants."""
    values = [record.get(name) for record in page]
    data_type = _DECLARED_TYPES.get(name) or next(
        (_DLT_TYPE_OF.get(type(v), "text") for v in values if v is not None), None
    )
    if data_type is None:
        return {}  # only nulls so far: dlt cannot type the column either
    accepts = _ACCEPTS[data_type]
    drifted: dict[str, list[Any]] = {}
    if not _all_of_types(values, accepts):
        for position, value in enumerate(values):
            if value is not None and type(value) not in accepts:
                variant = _DLT_TYPE_OF.get(type(value), "text")
                drifted.setdefault(variant, [None] * len(values))[position] = value
                values[position] = None
    try:
        columns = {name: _arrow_array(values, data_type)}
    except pa.ArrowInvalid:
        # Text that is no timestamp: kept as text, and visible to the checks as drift.
        drifted["text"] = _take_unparsed_timestamps(values)
        columns = {name: _arrow_array(values, data_type)}
    for variant, variant_values in drifted.items():
        columns[f"{name}__v_{variant}"] = _arrow_array(variant_values, variant)
    return columns


def _take_unparsed_timestamps(values: list[Any]) -> list[Any]:
    """Moves the texts that do not parse as timestamps out of `values`, to the same positions."""
    unparsed: list[Any] = [None] * len(values)
    for position, value in enumerate(values):
        try:
            pa.scalar(value, pa.string()).cast(_TIMESTAMP)
        except pa.ArrowInvalid:
            unparsed[position], values[position] = value, None
    return unparsed


def _arrow_array(values: list[Any], data_type: str) -> pa.Array:
    if data_type == "json":
        values = [None if v is None else orjson.dumps(v).decode() for v in values]
    if data_type == "timestamp":
        return pa.array(values, pa.string()).cast(_TIMESTAMP)
    return pa.array(values, _ARROW_TYPE_OF.get(data_type, pa.string()))


DATA_SELECTOR = jsonpath.compile_path("data")


def fulfillment_config(
    base_url: str, api_key: str, session: requests.Session, paginator: FulfillmentPaginator
) -> RESTAPIConfig:
    """The seed's rest_api configuration, with this project's session, paginator and hints."""
    return {
        "client": {
            "base_url": base_url,
            "auth": {"type": "api_key", "name": "api_key", "api_key": api_key, "location": "query"},
            "session": session,
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {
                "name": settings.RESOURCE_NAME,
                "endpoint": {
                    "path": settings.ENDPOINT_PATH,
                    # Compiled once: dlt would parse the JSONPath again for every page (~3 ms).
                    "data_selector": DATA_SELECTOR,
                    "paginator": paginator,
                    "response_actions": [
                        partial(check_page, on_rate_limit=paginator.read_ahead.throttle)
                    ],
                },
                "columns": {
                    **settings.CONTRACT_COLUMNS,
                    **settings.DOCUMENTED_COLUMNS,
                    # The newest version of a record wins when one load sees an id twice.
                    "updated_at": {
                        **settings.DOCUMENTED_COLUMNS["updated_at"],
                        "dedup_sort": "desc",
                    },
                },
                # Nested objects stay JSON columns, the same whether a page loads as Arrow or rows.
                "max_table_nesting": 0,
            }
        ],
    }


@dlt.source(name=settings.SOURCE_NAME, section=settings.SOURCE_NAME)
def fulfillment(
    base_url: str = dlt.config.value,
    api_key: str = dlt.secrets.value,
    page_limit: int = settings.PAGE_LIMIT,
    max_records: int = settings.MAX_RECORDS,
    page_concurrency: int = settings.PAGE_CONCURRENCY,
    request_timeout: float = settings.REQUEST_TIMEOUT_SECONDS,
    backoff_factor: float = settings.BACKOFF_FACTOR,
    allow_insecure_http: bool = False,
    arrow_batch_rows: int = settings.ARROW_BATCH_ROWS,
) -> list[DltResource]:
    """Fulfillment records from `GET {base_url}/v1/fulfillment`, one resource: fulfillment_data."""
    base_url = check_base_url(base_url, allow_insecure_http)
    session, read_ahead = build_session(
        base_url, api_key, request_timeout, backoff_factor, page_concurrency
    )
    paginator = FulfillmentPaginator(page_limit, max_records, read_ahead)
    config = fulfillment_config(base_url, api_key, session, paginator)
    (pages,) = rest_api_resources(config)
    if not arrow_batch_rows:
        return [pages]
    # The same table hints as the rest_api resource: the seed's defaults plus its own.
    (resource_config,) = config["resources"]
    hints = {
        **config["resource_defaults"],
        **{k: v for k, v in resource_config.items() if k not in ("name", "endpoint")},
    }

    def fulfillment_batches() -> Iterator[pa.Table]:
        try:
            yield from arrow_batches(pages, arrow_batch_rows)
        finally:
            read_ahead.close()  # a failed page leaves no fetches running behind it

    return [dlt.resource(fulfillment_batches(), name=pages.name, **hints)]


def arrow_batches(records: Iterable[dict[str, Any]], batch_rows: int) -> Iterator[pa.Table]:
    """Records (as a dlt resource yields them, page after page) in Arrow tables of `batch_rows`.

    dlt spends ~10 ms of schema work on every item it extracts, whatever its size: on pages of
    100 records that is most of the run. Batches keep that small and memory bounded.
    """
    records = iter(records)
    while batch := list(islice(records, batch_rows)):
        yield page_to_arrow(batch)


def describe_fulfillment() -> DltSource:
    """The source as Dagster reads it when a code location loads: names and hints only.

    No request is made and no secret is read; each run builds the source from configuration.
    """
    return fulfillment(base_url="https://fulfillment.invalid", api_key="resolved-at-run-time")
