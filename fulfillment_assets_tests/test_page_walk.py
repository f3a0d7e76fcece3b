"""The page walk against APIs that cap pages, lie about `total`, drip, or are refused by settings:
every record or a clear failure that loads nothing, every wait bounded."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from fulfillment_assets import settings
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets.source import fulfillment
from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    TEST_API_KEY,
    api_rows,
    failure_message,
    materialize_all,
    query,
    table_snapshot,
)


@pytest.fixture
def loaded(demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path):
    demo_api.configure(records=450)
    assert materialize_all(instance, selection=RAW_ONLY).success
    return table_snapshot(isolated_environment)


@pytest.mark.parametrize(
    "options",
    [
        {"include_total": True},
        {"include_total": False},
        {"include_total": True, "latency_ms": 20},  # read-ahead with capped pages
    ],
    ids=["with total", "without total", "with total, read ahead"],
)
@pytest.mark.every_destination
def test_an_api_capping_pages_at_50_loads_every_record(
    options: dict[str, Any],
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
) -> None:
    demo_api.configure(records=1234, max_limit=50, **options)

    assert materialize_all(instance, selection=RAW_ONLY).success

    assert query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data") == [
        (1234,)
    ]
    offsets = {request.offset for request in demo_api.requests if request.status == 200}
    assert offsets >= set(range(0, 1234, 50)) | {1234}  # every page, then the empty one
    assert table_snapshot(isolated_environment) == api_rows(demo_api)


@pytest.mark.parametrize(
    ("reported", "phrases"),
    [
        (300, ["reports total 300 but served 400 records"]),  # under-reports
        (2000, ["reports total 2000 but served 1000 records"]),  # over-reports
    ],
    ids=["under-reported", "over-reported"],
)
@pytest.mark.every_destination
def test_a_total_that_lies_fails_naming_both_numbers_and_loads_nothing(
    reported: int,
    phrases: list[str],
    loaded: list,
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
) -> None:
    demo_api.configure(records=1000, data_version=1, reported_total=reported)

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    for phrase in phrases:
        assert phrase in message, message
    assert table_snapshot(isolated_environment) == loaded


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("PAGE_LIMIT", "0"),
        ("PAGE_LIMIT", "-5"),
        ("PAGE_CONCURRENCY", "0"),
        ("PAGE_CONCURRENCY", "-1"),
        ("MAX_WALK_PASSES", "0"),
        ("TAIL_CHASE_PAGES", "-1"),
        ("CHUNK_PAGES", "0"),
        ("CHUNK_PAGES", "-3"),
        ("CHUNK_SECONDS", "0"),
        ("CHUNK_SECONDS", "-1.5"),
        ("MAX_WALK_AGE_HOURS", "0"),
        ("MAX_WALK_AGE_HOURS", "-2"),
        ("MAX_WALK_AGE_HOURS", "a week"),
        ("API_KEY", ""),
        ("API_KEY", "   "),
    ],
)
def test_bad_settings_are_refused_before_any_request(
    setting: str,
    value: str,
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"SOURCES__FULFILLMENT__{setting}", value)

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert not result.success
    assert f"SOURCES__FULFILLMENT__{setting}" in failure_message(result)
    assert demo_api.requests == []


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_dripping_body_times_out_within_the_request_timeout(
    loaded: list,
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every wait for bytes is short (0.2 s); the page as a whole would take minutes.
    monkeypatch.setenv("SOURCES__FULFILLMENT__REQUEST_TIMEOUT", "1")
    demo_api.configure(records=450, data_version=1, drip_offset=200)
    demo_api.clear_requests()

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    assert "no answer within the request timeout" in message and "offset 200" in message
    assert "SOURCES__FULFILLMENT__REQUEST_TIMEOUT" in message
    assert len([r for r in demo_api.requests if r.offset == 200]) == 1 + settings.MAX_RETRIES
    assert table_snapshot(isolated_environment) == loaded


def test_sigterm_ends_a_run_with_pages_in_flight_within_seconds(
    demo_api: DemoApiServer, tmp_path: Path
) -> None:
    # A slow API (read-ahead keeps pages in flight) whose page at 1000 drips for minutes.
    demo_api.configure(records=3000, latency_ms=20, drip_offset=1000)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    # PYTHONFAULTHANDLER: a run still alive after the SIGTERM is aborted and prints every thread.
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONFAULTHANDLER": "1"}
    run = subprocess.Popen(
        [
            *(sys.executable, "-m", "dagster", "asset", "materialize"),
            *("-m", "fulfillment_assets.definitions", "--select", "fulfillment/fulfillment_data"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(1200):  # bounded: at most ~2 min for Dagster to start and reach the drip
            if run.poll() is not None or any(r.offset == 1000 for r in demo_api.requests):
                break
            time.sleep(0.1)
        assert run.poll() is None, "the run ended before the dripping page"
        in_flight = demo_api.max_in_flight
        run.send_signal(signal.SIGTERM)
        # communicate, not wait: a run blocked writing to a full stderr pipe would never end.
        stderr = run.communicate(timeout=30)[1].decode()
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGABRT)
        stderr = run.communicate(timeout=30)[1].decode()
        pytest.fail(f"the run did not end within 30 s of SIGTERM; its threads:\n{stderr[-20000:]}")
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert in_flight > 1
    assert TEST_API_KEY not in stderr


def test_the_walk_logs_its_progress_with_an_eta_and_once_at_the_end(
    demo_api: DemoApiServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(settings, "PROGRESS_LOG_SECONDS", 0.0)  # every page, for the test
    demo_api.configure(records=500)
    source = fulfillment(base_url=demo_api.url, api_key=TEST_API_KEY, arrow_batch_rows=0)

    with caplog.at_level(logging.INFO, logger="fulfillment_assets.progress"):
        assert len(list(source.fulfillment_data)) == 500

    lines = [r.getMessage() for r in caplog.records if r.name == "fulfillment_assets.progress"]
    assert lines[0].startswith("fetched 1 page, 100 records, ")
    assert "records/s, 20% of 500, ETA " in lines[0]
    assert lines[-1].startswith("fetched 6 pages, 500 records, ") and lines[-1].endswith("done")
    assert sum(line.endswith("done") for line in lines) == 1


# What a server says first, dripped a byte every 0.2 s (600 bytes: 120 s).
DRIPPED_HEADERS = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + b"x: y\r\n" * 200
# A TLS handshake record that announces 16 KiB (a ServerHello with a certificate), then its bytes.
DRIPPED_TLS_HANDSHAKE = b"\x16\x03\x03\x40\x00\x02\x00\x3f\xfc\x03\x03" + b"\x00" * 600


class DripServer:
    """A raw-socket fake API (uvicorn cannot drip headers, nor a TLS handshake): after each
    connection's first bytes (a request line, or a TLS ClientHello), `drip` arrives a byte every
    0.2 s, for up to two minutes. It records each connection's first line and how long the client
    stayed connected."""

    def __init__(self, drip: bytes = DRIPPED_HEADERS, scheme: str = "http") -> None:
        self._drip_bytes = drip[:600]
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.connected_seconds: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _drip(self, conn: socket.socket) -> None:
        accepted = time.monotonic()
        with conn:
            conn.settimeout(5)
            self.requests.append(conn.recv(65_536).split(b"\r\n", 1)[0])
            for byte in self._drip_bytes:
                if self._stop.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    break  # the client gave up
            self.connected_seconds.append(time.monotonic() - accepted)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.parametrize(
    ("drip", "scheme", "first_bytes"),
    [(DRIPPED_HEADERS, "http", b"GET "), (DRIPPED_TLS_HANDSHAKE, "https", b"\x16\x03")],
    ids=["status line and headers", "TLS handshake"],
)
def test_a_page_dripping_before_its_body_times_out_within_the_request_timeout(
    drip: bytes,
    scheme: str,
    first_bytes: bytes,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = DripServer(drip, scheme=scheme)
    monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", server.url)
    monkeypatch.setenv("SOURCES__FULFILLMENT__API_KEY", TEST_API_KEY)
    # Each wait for a byte is short (0.2 s); what the server drips would take 120 s.
    monkeypatch.setenv("SOURCES__FULFILLMENT__REQUEST_TIMEOUT", "2")
    try:
        result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)
        for _ in range(30):  # bounded: the server notices the last attempt's end within 0.4 s
            if len(server.connected_seconds) == len(server.requests):
                break
            time.sleep(0.1)
    finally:
        server.close()

    assert not result.success
    message = failure_message(result)
    assert "no answer within the request timeout" in message and "offset 0" in message
    assert "SOURCES__FULFILLMENT__REQUEST_TIMEOUT" in message
    assert TEST_API_KEY not in message
    assert len(server.requests) == 1 + settings.MAX_RETRIES  # retried like a read timeout
    assert all(r.startswith(first_bytes) for r in server.requests)  # what was cut
    # Each attempt ended at its page deadline (2 s; the drip noticed within 0.4 s after).
    assert len(server.connected_seconds) == len(server.requests)
    assert all(seconds < 2 + 1.5 for seconds in server.connected_seconds), server.connected_seconds
    for _ in range(50):  # bounded: the deadline watchdog ends once no page is in flight
        if not any(t.name == "fulfillment-page-deadline" for t in threading.enumerate()):
            break
        time.sleep(0.1)
    assert not any(t.name == "fulfillment-page-deadline" for t in threading.enumerate())
