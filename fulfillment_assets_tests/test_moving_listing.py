"""Listings that move while the walk runs, against a small fake API of the test's own (a real
HTTP server on loopback): nothing the API has is lost, and nothing live is marked deleted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from dagster import DagsterInstance

from fulfillment_assets_tests.conftest import RAW_ONLY, TEST_API_KEY, materialize_all, query


class LaggingReplica:
    """2,000 orders, no `total`; the page at `empty_offset` answers `{"data": []}` once per run
    (a lagging replica), then whole."""

    def __init__(self, records: int = 2000, empty_offset: int = 800) -> None:
        self.records = records
        self.empty_offset = empty_offset
        self.empty_answers_left = 1
        self.requests: list[int] = []

    def page(self, offset: int, limit: int) -> dict:
        self.requests.append(offset)
        if offset == self.empty_offset and self.empty_answers_left:
            self.empty_answers_left -= 1
            return {"data": []}
        ids = range(offset + 1, min(offset + limit, self.records) + 1)
        return {
            "data": [
                {"id": i, "customer_id": i % 97, "order_status": "shipped", "amount": 1.0}
                for i in ids
            ]
        }


@pytest.fixture
def replica(monkeypatch: pytest.MonkeyPatch) -> Iterator[LaggingReplica]:
    api = LaggingReplica()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            query_params = parse_qs(urlsplit(self.path).query)
            offset = int(query_params.get("offset", ["0"])[0])
            limit = int(query_params.get("limit", ["100"])[0])
            body = orjson.dumps(api.page(offset, limit))
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
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.every_destination
def test_an_empty_page_once_without_total_is_asked_again_and_nothing_is_marked_deleted(
    replica: LaggingReplica, instance: DagsterInstance, isolated_environment: Path
) -> None:
    for _ in range(2):  # run 2 is a full walk that would mark what it missed as deleted
        replica.empty_answers_left = 1
        assert materialize_all(instance, selection=RAW_ONLY).success

    counts = query(
        isolated_environment,
        "SELECT count(*), count(DISTINCT id), count(_deleted_at) FROM fulfillment.fulfillment_data",
    )
    assert counts == [(2000, 2000, 0)]
    assert replica.requests.count(800) == 4  # each run: the empty answer, then asked again
