"""Messages that name the real cause and what fixes it, against small fake APIs of the test's own
(behaviour the demo API cannot show: redirects, ids past 64 bits, absurd nesting)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import DagsterInstance

from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    TEST_API_KEY,
    failure_message,
    materialize_all,
)

Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Answer], None]]:
    """A loopback API answering every request with the (status, headers, body) it is given."""
    answer: list[Answer] = [(200, {}, b'{"data": []}')]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status, headers, body = answer[0]
            self.send_response(status)
            for name, value in {"content-type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # the URL holds the key: never print it
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("SOURCES__FULFILLMENT__API_KEY", TEST_API_KEY)
    try:
        yield lambda new: answer.__setitem__(0, new)
    finally:
        server.shutdown()
        server.server_close()


def _fails_with(instance: DagsterInstance) -> str:
    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)
    assert not result.success
    message = failure_message(result)
    assert TEST_API_KEY not in message
    return message


def test_connection_refused_says_what_to_check_whole(
    instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SOURCES__FULFILLMENT__API_KEY", TEST_API_KEY)

    message = _fails_with(instance)

    assert f"could not connect to http://127.0.0.1:{port} (connection refused)" in message
    assert "is the fulfillment API running? Check SOURCES__FULFILLMENT__BASE_URL" in message


def test_a_persistent_server_error_names_the_host_and_the_settings_never_the_url(
    fake_api: Callable[[Answer], None], instance: DagsterInstance
) -> None:
    fake_api((503, {}, b"upstream unavailable"))

    message = _fails_with(instance)

    host = os.environ["SOURCES__FULFILLMENT__BASE_URL"]  # http://127.0.0.1:<port>
    assert (
        f"the fulfillment API at {host} answered HTTP 503 on GET /v1/fulfillment at offset 0, "
        "still failing after 3 retries" in message
    ), message
    assert "SOURCES__FULFILLMENT__BACKOFF_FACTOR (now 0.02)" in message
    assert "the API's address is SOURCES__FULFILLMENT__BASE_URL" in message
    assert "body: 'upstream unavailable'" in message
    # The URL with its query (where the key travels) is not in it, masked or not.
    assert "api_key" not in message and "?" not in message


def test_a_redirect_to_another_host_says_so(
    fake_api: Callable[[Answer], None], instance: DagsterInstance
) -> None:
    fake_api((302, {"location": "https://login.example.com/sso?next=/v1"}, b""))

    message = _fails_with(instance)

    assert "redirected GET /v1/fulfillment at offset 0 (HTTP 302)" in message
    assert (
        "https://login.example.com/sso" in message and "SOURCES__FULFILLMENT__BASE_URL" in message
    )
    assert "not JSON" not in message


def test_an_id_past_64_bits_names_the_column_and_the_page(
    fake_api: Callable[[Answer], None], instance: DagsterInstance
) -> None:
    fake_api((200, {}, b'{"data": [{"id": 1}, {"id": %d}], "total": 2}' % 2**63))

    message = _fails_with(instance)

    assert "the page at offset 0 has record #1 with `id` 9223372036854775808" in message
    assert "64-bit integer column `id`" in message
    assert "OverflowError" not in message


def test_absurdly_nested_json_says_so(
    fake_api: Callable[[Answer], None], instance: DagsterInstance
) -> None:
    nested = b"[" * 1100 + b"]" * 1100
    fake_api((200, {}, b'{"data": [{"id": 1, "deep": %s}]}' % nested))

    message = _fails_with(instance)

    assert "the page at offset 0 is nested deeper than 1024 levels" in message
    assert "is not JSON" not in message
