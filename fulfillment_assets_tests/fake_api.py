"""A fake fulfillment API of a test's own: any object with `page(offset, limit, params)`,
served as a real HTTP server on an ephemeral loopback port, for behaviour the demo API cannot
show (a listing that changes while it is walked, ids of another type)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from fulfillment_assets_tests.helpers import TEST_API_KEY


class RecordsApi:
    """The records it is given, in offset pages with `total`: the plainest fake API."""

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        self.records = records or []

    def serve(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def page(self, offset: int, limit: int, params: dict[str, str]) -> dict[str, Any]:
        return {"data": self.records[offset : offset + limit], "total": len(self.records)}


class FakeApi(Protocol):
    def page(self, offset: int, limit: int, params: dict[str, str]) -> Any:
        """The page at `offset` (the request's other query params given): a JSON-able value, or
        the body's bytes as they are (JSON that Python would not write, e.g. `1e400`)."""


@contextlib.contextmanager
def serve_fake_api(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`api.page(offset, limit, params)` served as JSON over HTTP on loopback, wired into the
    source's settings (base URL and the test key) for the test's runs."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            query_params = parse_qs(urlsplit(self.path).query)
            offset = int(query_params.get("offset", ["0"])[0])
            limit = int(query_params.get("limit", ["100"])[0])
            params = {name: values[0] for name, values in query_params.items()}
            page = api.page(offset, limit, params)
            body = page if isinstance(page, bytes) else orjson.dumps(page)
            self.send_response(200)
            self.send_header("content-type", "application/json")
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
        yield
    finally:
        server.shutdown()
        server.server_close()
