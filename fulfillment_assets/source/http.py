"""HTTP for the fulfillment API: the seed's retries and errors that say what to do, without the key.

- the source's errors (`FulfillmentApiError` and its kinds for an HTTP status and a bad page);
- dlt's retrying `Client` with exactly the seed's policy (429/500/502/503/504, factor 2, 3
  retries), and `raise_for_status`, which judges each status (a rate limit's announced wait,
  the API's own words, the setting to change);
- an error status that persists named with the API's host (never its URL: the key is in the
  query) and the settings that govern it;
- transport errors and `base_url` checked and described (connection refused, timeouts, plain
  http to a non-loopback host); the whole-page deadline and the parsed-once response are in
  `transport.py`;
- every message this package raises is masked by `masking.KeyMask` (the API key in every form).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from dlt.sources.helpers.requests import Client

from fulfillment_assets import settings
from fulfillment_assets.masking import KeyMask
from fulfillment_assets.source.api_message import api_message
from fulfillment_assets.source.pacing import announced_wait

API_KEY_SETTING = (
    "SOURCES__FULFILLMENT__API_KEY (or api_key under [sources.fulfillment] in .dlt/secrets.toml)"
)
BASE_URL_SETTING = (
    "SOURCES__FULFILLMENT__BASE_URL (or base_url under [sources.fulfillment] in .dlt/config.toml)"
)
_OFFSET_IN_URL = re.compile(r"[?&]offset=(\d+)")
_EXCERPT_CHARS = 120
BACKOFF_FACTOR_SETTING = "SOURCES__FULFILLMENT__BACKOFF_FACTOR"
MAX_RETRY_WAIT_SETTING = "SOURCES__FULFILLMENT__MAX_RETRY_WAIT"


class FulfillmentApiError(Exception):
    """The fulfillment API could not be read; the message says where and why, without the key."""


class FulfillmentHttpError(requests.HTTPError, FulfillmentApiError):
    """An HTTP error status. Subclasses HTTPError so dlt's retry still sees the status code."""


class FulfillmentPageError(FulfillmentApiError, ValueError):
    """A 200 answer whose body breaks the API's contract."""


def excerpt(content: bytes, mask: KeyMask) -> str:
    """At most ~120 characters of a body, whitespace collapsed, the key masked, cut at a word."""
    text = mask(" ".join(content[:2000].decode("utf-8", "replace").split()))
    if len(text) <= _EXCERPT_CHARS:
        return text
    return text[:_EXCERPT_CHARS].rsplit(" ", 1)[0] + "..."


def api_origin(url: str | None, mask: KeyMask) -> str:
    """`scheme://host:port` of a URL, for messages: no credentials, path or query (the key
    travels in the query)."""
    parts = urlsplit(url or "")
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: base_url was checked, so only a message would suffer
        port = ""
    return mask(f"{parts.scheme}://{host}{port}")


def offset_of(url: str | None) -> int | None:
    """The page's offset, read from its URL (for messages only)."""
    found = _OFFSET_IN_URL.search(url or "")
    return int(found.group(1)) if found else None


def offset_in(url: str | None) -> str:
    """Which page a URL asks for, for messages, in the seed's shape (`ApiShape.where` in
    another's)."""
    return f"offset {offset_of(url)}"


def retrying_client(request_timeout: float, backoff_factor: float) -> Client:
    """dlt's retrying client with the seed's policy; statuses are judged by `raise_for_status`."""
    return Client(
        request_timeout=request_timeout,
        raise_for_status=False,
        status_codes=settings.RETRY_STATUS_CODES,
        request_max_attempts=1 + settings.MAX_RETRIES,
        request_backoff_factor=backoff_factor,
        respect_retry_after_header=True,
    )


def raise_for_status(
    response: requests.Response,
    *args: Any,
    mask: KeyMask,
    on_rate_limit: Callable[[], None] | None = None,
    backoff_factor: float = settings.BACKOFF_FACTOR,
    max_retry_wait: float = settings.MAX_RETRY_WAIT_SECONDS,
    where: Callable[[str | None], str] = offset_in,
    path: str = settings.ENDPOINT_PATH,
    **kwargs: Any,
) -> None:
    """Response hook: an error status becomes an error naming the page and the setting to fix.
    `where` names the page a URL asks for (`offset 200`, `page 3`), `path` the endpoint.

    Redirects are not followed (the key would travel to wherever they point): one is an error too.
    """
    if response.status_code < 300:
        return
    if response.status_code < 400:
        target = urlsplit(response.headers.get("location", ""))
        raise FulfillmentHttpError(
            f"the fulfillment API redirected GET {path} at {where(response.request.url)} "
            f"(HTTP {response.status_code}) to "
            f"{mask(f'{target.scheme}://{target.netloc}{target.path}')!r}; redirects are not "
            f"followed, so the API key is not sent elsewhere: set {BASE_URL_SETTING} to the "
            "address the API answers at",
            response=response,
        )
    if response.status_code == 429 and on_rate_limit is not None:
        on_rate_limit()
    status, page = response.status_code, where(response.request.url)
    request = f"GET {path} at {page}"
    said = api_message(response.content, mask)
    wait = announced_wait(response) if status == 429 else None
    if wait is not None and wait.seconds > max_retry_wait:
        # Not an HTTPError: dlt's retries would only wait the same bound again, three times.
        raise FulfillmentApiError(
            f"the fulfillment API is rate limiting GET {path} (HTTP 429 at "
            f"{page}) and asks to wait {wait}, longer than max_retry_wait "
            f"{max_retry_wait:g} s: set {MAX_RETRY_WAIT_SETTING} above it to wait that long"
            + (f"; the API says: '{said}'" if said else "")
        )
    if status in (401, 403):
        what = (
            f"the fulfillment API rejected the API key (HTTP {status}) on {request}: "
            f"set {API_KEY_SETTING} to a valid key"
        )
    elif status == 404:
        what = f"the fulfillment API has no {path} here (HTTP 404): check {BASE_URL_SETTING}" + (
            "" if path == settings.ENDPOINT_PATH else " and endpoint.path"
        )
    elif status == 429:
        waits = getattr(response, "rate_limit_waits", 0)
        asked = f"it asked to wait {wait}" if wait is not None else "it announced no wait"
        what = (
            f"the fulfillment API answered HTTP 429 (rate limited) on {request}, still failing "
            f"after {settings.MAX_RETRIES} retries and {waits} waits for its rate limit; "
            f"{asked}. Waits between retries grow with {BACKOFF_FACTOR_SETTING} (now "
            f"{backoff_factor:g}); announced waits are honoured up to {MAX_RETRY_WAIT_SETTING} "
            f"(now {max_retry_wait:g} s)"
        )
    elif status in settings.RETRY_STATUS_CODES:
        # An error at the API's end: the host says which API (the key travels in the query,
        # so the URL itself is never shown), the settings what governs the address and retries.
        what = (
            f"the fulfillment API at {api_origin(response.request.url, mask)} answered "
            f"HTTP {status} on {request}, still failing after {settings.MAX_RETRIES} retries. "
            f"Waits between retries grow with {BACKOFF_FACTOR_SETTING} (now {backoff_factor:g}); "
            f"the API's address is {BASE_URL_SETTING}"
        )
    else:
        what = f"the fulfillment API refused {request} with HTTP {status}"
    if said:
        raise FulfillmentHttpError(f"{what}; the API says: '{said}'", response=response)
    body = excerpt(response.content, mask)
    raise FulfillmentHttpError(f"{what}; body: {body!r}" if body else what, response=response)


def describe_transport_error(
    error: requests.RequestException,
    request: requests.PreparedRequest,
    mask: KeyMask,
    where_in: Callable[[str | None], str] = offset_in,
    path: str = settings.ENDPOINT_PATH,
) -> str:
    """What failed on the way to the API, with the page, the URL (masked) and what to check."""
    parts = urlsplit(request.url or "")
    origin = mask(f"{parts.scheme}://{parts.netloc}")
    where = (
        f"on GET {path} at {where_in(request.url)} after "
        f"{1 + settings.MAX_RETRIES} attempts ({mask(request.url or '')})"
    )
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return f"connecting to {origin} timed out {where}: check {BASE_URL_SETTING}"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return (
            f"no answer within the request timeout {where}: the page did not arrive whole "
            "in time; raise SOURCES__FULFILLMENT__REQUEST_TIMEOUT if the API is that slow"
        )
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return f"the connection dropped mid-body {where}"
    if isinstance(error, requests.exceptions.ConnectionError):
        refused = "refused" in str(error).lower()
        return (
            f"could not connect to {origin} ({'connection refused' if refused else 'no route'}) "
            f"{where}: is the fulfillment API running? Check {BASE_URL_SETTING}"
        )
    return f"the request failed {where}: {type(error).__name__}"


def check_base_url(base_url: str, allow_insecure_http: bool) -> str:
    """The key travels in the query string: plain http is for loopback unless opted in."""
    mask = KeyMask(base_url=base_url)
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FulfillmentApiError(
            f"base_url {mask(base_url)!r} is not an http(s) URL: check {BASE_URL_SETTING}"
        )
    in_clear = parts.scheme == "http" and not settings.is_loopback_host(parts.hostname)
    if in_clear and not allow_insecure_http:
        raise FulfillmentApiError(
            f"base_url {mask(base_url)!r} is plain http on a non-loopback host, so the API key "
            "would travel in clear text: use https, or set SOURCES__FULFILLMENT__"
            "ALLOW_INSECURE_HTTP=true to accept that risk"
        )
    return base_url.rstrip("/")
