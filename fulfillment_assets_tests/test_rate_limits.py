"""A rate-limited API, as real fulfillment APIs are: the run waits as the API asks, slows down
before the limit, and a limit it cannot wait for fails naming the wait and the settings; an error
envelope's own words are shown, masked."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from dagster import DagsterInstance

from fulfillment_assets.source.pacing import RateLimitPacer, WaitTooLong, reset_in
from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    TEST_API_KEY,
    failure_message,
    materialize_all,
    query,
)

RECORDS = 400  # 20 pages of 20 and the empty one: 21 requests, two windows of 15 and a bit
WINDOW_REQUESTS, WINDOW_SECONDS = 15, 4.0


class RateLimitedApi:
    """A fixed window of `WINDOW_REQUESTS` per `WINDOW_SECONDS`; past it, 429 with the reset in
    the header `reset_header` (as seconds until it, or as an epoch), and no Retry-After."""

    def __init__(
        self, reset_header: str, epoch: bool, remaining: bool = False, body: Any = None
    ) -> None:
        self.reset_header, self.epoch, self.remaining, self.body = (
            reset_header,
            epoch,
            remaining,
            body,
        )
        self.lock = threading.Lock()
        self.window_start = time.time()
        self.used = 0
        self.statuses: list[int] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, headers, body = api.answer(self.path)
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # the URL holds the key
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            now = time.time()
            if now - self.window_start >= WINDOW_SECONDS:
                self.window_start, self.used = now, 0
            reset_at = self.window_start + WINDOW_SECONDS
            reset = str(math.ceil(reset_at) if self.epoch else math.ceil(reset_at - now))
            limited = self.used >= WINDOW_REQUESTS
            self.used += 0 if limited else 1
            headers = {self.reset_header: reset}
            if self.remaining:
                headers["X-RateLimit-Limit"] = str(WINDOW_REQUESTS)
                headers["X-RateLimit-Remaining"] = str(WINDOW_REQUESTS - self.used)
            self.statuses.append(429 if limited else 200)
        if limited:
            return 429, headers, b'{"error": "rate limit exceeded"}'
        if self.body is not None:
            return 200, headers, json.dumps(self.body).encode()
        query_params = parse_qs(urlsplit(path).query)
        offset, limit = int(query_params["offset"][0]), int(query_params["limit"][0])
        records = [
            {
                "id": i,
                "customer_id": i % 7,
                "order_status": "shipped",
                "updated_at": "2026-10-01T00:00:00Z",
                "amount": 1.5,
            }
            for i in range(offset + 1, min(offset + limit, RECORDS) + 1)
        ]
        return 200, headers, json.dumps({"data": records, "total": RECORDS}).encode()


@pytest.fixture
def rate_limited(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator:
    def start(reset_header: str = "X-Rate-Limit-Reset", **options: Any) -> RateLimitedApi:
        api = RateLimitedApi(reset_header, options.pop("epoch", False), **options)
        monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", api.url)
        monkeypatch.setenv("SOURCES__FULFILLMENT__API_KEY", TEST_API_KEY)
        monkeypatch.setenv("SOURCES__FULFILLMENT__PAGE_LIMIT", "20")
        started.append(api)
        return api

    started: list[RateLimitedApi] = []
    yield start
    for api in started:
        api.server.shutdown()
        api.server.server_close()


@pytest.mark.parametrize(
    ("reset_header", "epoch", "remaining"),
    [
        ("X-Rate-Limit-Reset", False, False),
        ("X-Rate-Limit-Reset", True, False),
        ("RateLimit-Reset", False, False),
        ("X-RateLimit-Reset", False, True),
    ],
    ids=["X-Rate-Limit-Reset seconds", "epoch", "RateLimit-Reset", "X-RateLimit-Remaining"],
)
@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_rate_limited_api_loads_everything_with_the_seeds_settings(
    reset_header: str,
    epoch: bool,
    remaining: bool,
    rate_limited: Any,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The seed's backoff factor (waits of 2, 4, 8 s): the pacing follows the API, not the factor.
    monkeypatch.setenv("SOURCES__FULFILLMENT__BACKOFF_FACTOR", "2")
    api = rate_limited(reset_header, epoch=epoch, remaining=remaining)

    assert materialize_all(instance, selection=RAW_ONLY).success

    assert query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data") == [
        (RECORDS,)
    ]
    assert api.statuses.count(200) == RECORDS // 20 + 1
    if remaining:
        # Told how many requests are left, the run waits for the reset instead of running into
        # the limit: only requests already in flight (one per read-ahead worker, 4) can race the
        # last answer into a 429; unpaced, the 6 requests past the window would all meet one.
        assert api.statuses.count(429) <= 4


def test_a_rate_limit_longer_than_the_bound_fails_naming_the_wait_and_the_settings(
    rate_limited: Any, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__MAX_RETRY_WAIT", "1")
    api = rate_limited("X-Rate-Limit-Reset")
    api.used = WINDOW_REQUESTS  # spent: the reset is ~4 s away, more than the bound of 1 s

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert not result.success
    message = failure_message(result)
    assert TEST_API_KEY not in message
    assert "asks to wait" in message and "X-Rate-Limit-Reset: " in message
    assert "SOURCES__FULFILLMENT__MAX_RETRY_WAIT" in message
    assert "rate limit exceeded" in message  # the API's own words


def test_a_spent_limit_whose_reset_is_past_the_bound_fails_at_once_naming_the_wait(
    rate_limited: Any, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An ordinary answer (200) saying no request is left until tomorrow: the run does not sleep
    # a day (past every page deadline), it fails as a 429 asking for more than the bound does.
    monkeypatch.setenv("SOURCES__FULFILLMENT__MAX_RETRY_WAIT", "5")
    api = rate_limited("X-RateLimit-Reset")
    page = api.answer

    def spent_until_tomorrow(path: str) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = page(path)
        return status, {**headers, "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "86400"}, body

    api.answer = spent_until_tomorrow
    started = time.monotonic()

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert not result.success
    assert time.monotonic() - started < 60  # failed, not waited for
    message = failure_message(result)
    assert TEST_API_KEY not in message
    assert "X-RateLimit-Remaining: 0" in message
    assert "asks to wait 86400.0 s (X-RateLimit-Reset: 86400)" in message
    assert "longer than max_retry_wait 5 s" in message
    assert "SOURCES__FULFILLMENT__MAX_RETRY_WAIT" in message
    assert api.statuses == [200]  # nothing was sent into the spent limit


def test_a_429_that_persists_fails_naming_the_wait_asked_and_both_settings(
    rate_limited: Any, instance: DagsterInstance
) -> None:
    api = rate_limited("X-Rate-Limit-Reset")
    api.answer = lambda path: (429, {"X-Rate-Limit-Reset": "0"}, b'{"message": "slow down"}')

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert not result.success
    message = failure_message(result)
    assert "HTTP 429 (rate limited)" in message and "after 3 retries" in message
    assert "it asked to wait 0.0 s (X-Rate-Limit-Reset: 0)" in message
    assert "SOURCES__FULFILLMENT__BACKOFF_FACTOR" in message
    assert "SOURCES__FULFILLMENT__MAX_RETRY_WAIT" in message
    assert "the API says: 'slow down'" in message


@pytest.mark.parametrize(
    "body",
    [
        {"data": None, "errors": [{"message": f"Not enough credits for {TEST_API_KEY}\x1b[0m"}]},
        {"data": None, "error": f"Not enough credits for {TEST_API_KEY}\x1b[0m"},
        {"data": None, "errors": [f"Not enough credits for {TEST_API_KEY}\x1b[0m"]},
    ],
    ids=["errors[].message", "error", "errors[]"],
)
def test_an_error_envelope_shows_the_apis_words_masked(
    body: dict, rate_limited: Any, instance: DagsterInstance
) -> None:
    rate_limited("X-Rate-Limit-Reset", body=body)

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert not result.success
    message = failure_message(result)
    assert TEST_API_KEY not in message
    assert "the page at offset 0" in message
    assert "the API says: 'Not enough credits for ***\\x1b[0m'" in message


def _answer(**headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.headers.update(headers)
    return response


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-RateLimit-Reset", lambda now: "30"),
        ("X-RateLimit-Reset", lambda now: str(now + 30)),
        ("X-Rate-Limit-Reset", lambda now: str((now + 30) * 1000)),
        ("RateLimit-Reset", lambda now: "30"),
        ("RateLimit-Reset", lambda now: str(now + 30)),
    ],
    ids=["delta seconds", "epoch seconds", "epoch milliseconds", "IETF delta", "IETF as epoch"],
)
def test_a_reset_header_is_read_as_seconds_until_it_whatever_its_unit(
    header: str, value: Any
) -> None:
    now = int(time.time())
    wait = reset_in(_answer(**{header: value(now)}))

    assert wait is not None and wait.header == header
    assert 28.0 < wait.seconds <= 30.0  # a second may pass between `now` and the reading


def test_an_epoch_reset_is_read_against_the_apis_own_clock() -> None:
    # The API's clock an hour behind ours: its reset, 30 s after its `Date`, is 30 s away, not
    # long past (read against our clock it would be no wait at all, and the run would hit 429s).
    api_now = int(time.time()) - 3600
    answer = _answer(**{"X-RateLimit-Reset": str(api_now + 30), "Date": formatdate(api_now)})

    wait = reset_in(answer)

    assert wait is not None and wait.seconds == 30.0


def test_the_pacer_waits_for_a_near_reset_and_refuses_one_past_its_bound() -> None:
    pacer = RateLimitPacer(max_wait=5)
    pacer.before_send()
    pacer.after_response(_answer(**{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.3"}))
    started = time.monotonic()
    pacer.before_send()  # waits for the reset, 0.3 s
    assert time.monotonic() - started >= 0.25

    pacer.after_response(_answer(**{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "86400"}))
    with pytest.raises(WaitTooLong) as refused:
        pacer.before_send()
    assert refused.value.wait.seconds == 86400.0
    assert refused.value.spent == "X-RateLimit-Remaining: 0"
