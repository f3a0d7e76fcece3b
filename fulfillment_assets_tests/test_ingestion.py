"""The raw table through Dagster: exactly the API's records, merged, paginated, retried."""

from __future__ import annotations

import logging
import shutil
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dagster import DagsterInstance, TableSchema

from fulfillment_assets import settings
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets.source.pages import EMPTY_PAGE_RETRIES
from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    api_rows,
    failure_message,
    materialize_all,
    query,
    table_snapshot,
)
from fulfillment_assets_tests.served.cli import materialize_everything_from_the_cli


def _ids_requested(api: DemoApiServer) -> list[int | None]:
    return [request.offset for request in api.requests]


@pytest.mark.every_destination
def test_loads_exactly_the_api_records_and_a_rerun_adds_no_duplicates(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    result = materialize_all(instance)

    assert result.success
    expected = api_rows(demo_api)
    assert table_snapshot(isolated_environment) == expected
    # Not a multiple of 100: 12 full pages and a short one, and no request past the end.
    # Every page once, and the empty page at `total` that confirms the end.
    assert sorted(_ids_requested(demo_api), key=lambda offset: offset or 0) == [
        *range(0, 1300, 100),
        1234,
    ]
    materialization = result.asset_materializations_for_node("fulfillment_ingest")[0]
    assert materialization.metadata["dagster/row_count"].value == 1234
    schema = materialization.metadata["dagster/column_schema"].value
    assert isinstance(schema, TableSchema)
    assert {"id", "customer_id", "order_status"} <= {column.name for column in schema.columns}

    assert materialize_all(instance).success
    assert table_snapshot(isolated_environment) == expected
    ((rows, distinct_ids),) = query(
        isolated_environment,
        "SELECT count(*), count(DISTINCT id) FROM fulfillment.fulfillment_data",
    )
    assert rows == distinct_ids == 1234


def test_declared_column_types_and_nullability(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    materialize_all(instance)

    columns = {
        name: (data_type, nullable)
        for name, data_type, nullable in query(
            isolated_environment,
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'fulfillment' AND table_name = 'fulfillment_data'",
        )
    }
    assert columns["id"] == ("BIGINT", "NO")
    assert columns["customer_id"] == ("VARCHAR", "YES")
    assert columns["order_status"] == ("VARCHAR", "YES")
    # Nested data is kept as a JSON column.
    assert columns["shipment"][0] == "JSON"


def test_extra_fields_from_the_api_are_kept(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    demo_api.configure(records=150, extra_fields={"warehouse_code": "BER-1", "priority": 2})

    materialize_all(instance)

    assert query(
        isolated_environment,
        "SELECT count(*), min(warehouse_code), max(priority) FROM fulfillment.fulfillment_data",
    ) == [(150, "BER-1", 2)]


def test_pages_without_total_stop_only_on_the_empty_page(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    demo_api.configure(records=250, include_total=False)

    assert materialize_all(instance).success

    assert query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data") == [
        (250,)
    ]
    # A short page is no end (the API may cap pages): the walk asks until a page is empty.
    assert _ids_requested(demo_api) == [0, 100, 200, 250]


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_without_total_a_full_last_page_stops_on_the_empty_page(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    demo_api.configure(records=200, include_total=False)

    assert materialize_all(instance).success

    # Without `total`, an empty page right after a full one may be a lagging replica's answer:
    # it is asked again (pages.EMPTY_PAGE_RETRIES times) before it ends the walk.
    assert _ids_requested(demo_api) == [0, 100, 200] + [200] * EMPTY_PAGE_RETRIES
    assert query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data") == [
        (200,)
    ]


@pytest.mark.every_destination
def test_an_empty_api_loads_nothing_and_succeeds(
    demo_api: DemoApiServer, instance: DagsterInstance
) -> None:
    demo_api.configure(records=0)

    result = materialize_all(instance)

    assert result.success
    materialization = result.asset_materializations_for_node("fulfillment_ingest")[0]
    assert materialization.metadata["dagster/row_count"].value == 0
    assert _ids_requested(demo_api) == [0]


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_503_burst_is_retried_and_everything_loads(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    demo_api.configure(records=300, fail_status=503, fail_times=2)

    assert materialize_all(instance).success

    assert query(isolated_environment, "SELECT count(*) FROM fulfillment.fulfillment_data") == [
        (300,)
    ]
    statuses = [(request.offset, request.status) for request in demo_api.requests]
    for offset in (0, 100, 200):
        assert [status for at, status in statuses if at == offset] == [503, 503, 200]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_persistent_retryable_status_fails_after_exactly_four_attempts(
    status: int, demo_api: DemoApiServer, instance: DagsterInstance
) -> None:
    demo_api.configure(records=300, fail_status=status, fail_offsets={100})

    result = materialize_all(instance, raise_on_error=False)

    assert not result.success
    attempts = [request for request in demo_api.requests if request.offset == 100]
    assert len(attempts) == 4
    message = failure_message(result)
    assert f"HTTP {status}" in message and "offset 100" in message


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_retry_after_is_honoured(demo_api: DemoApiServer, instance: DagsterInstance) -> None:
    demo_api.configure(records=50, fail_status=429, fail_times=1, retry_after="1")

    assert materialize_all(instance).success

    first, second = demo_api.requests[:2]
    assert (first.status, second.status) == (429, 200)
    assert 0.9 <= second.at - first.at < 3


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_other_client_errors_fail_at_once_with_a_message_that_says_what_to_fix(
    status: int, demo_api: DemoApiServer, instance: DagsterInstance
) -> None:
    demo_api.configure(records=50, fail_status=status)

    result = materialize_all(instance, raise_on_error=False)

    assert not result.success
    assert len(demo_api.requests) == 1
    message = failure_message(result)
    assert f"HTTP {status}" in message
    if status in (401, 403):
        assert "rejected the API key" in message and "SOURCES__FULFILLMENT__API_KEY" in message
    if status == 404:
        assert "SOURCES__FULFILLMENT__BASE_URL" in message


def test_a_wrong_key_is_a_401_that_names_the_setting(
    demo_api: DemoApiServer, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__API_KEY", "not-the-key")

    result = materialize_all(instance, raise_on_error=False)

    assert not result.success
    message = failure_message(result)
    assert "HTTP 401" in message and "SOURCES__FULFILLMENT__API_KEY" in message
    assert "not-the-key" not in message


def test_a_run_without_a_key_fails_naming_the_setting(
    demo_api: DemoApiServer, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCES__FULFILLMENT__API_KEY")

    result = materialize_all(instance, raise_on_error=False)

    assert not result.success
    assert "SOURCES__FULFILLMENT__API_KEY" in failure_message(result)
    assert demo_api.requests == []


def test_a_slow_api_is_read_ahead_concurrently_with_the_same_result(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    demo_api.configure(records=3000, latency_ms=20)

    assert materialize_all(instance, selection=RAW_ONLY).success

    assert demo_api.max_in_flight > 2
    assert table_snapshot(isolated_environment) == api_rows(demo_api)
    assert sorted(_ids_requested(demo_api), key=lambda offset: offset or 0) == list(
        range(0, 3001, 100)
    )


def test_without_total_the_walk_stays_sequential(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    demo_api.configure(records=1000, latency_ms=20, include_total=False)

    assert materialize_all(instance, selection=RAW_ONLY).success

    assert demo_api.max_in_flight == 1
    assert table_snapshot(isolated_environment) == api_rows(demo_api)


def test_a_fast_api_gets_only_a_few_pages_fetched_ahead(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    # Below READ_AHEAD_MIN_LATENCY more threads would only contend for the GIL.
    demo_api.configure(records=3000)

    assert materialize_all(instance, selection=RAW_ONLY).success

    assert demo_api.max_in_flight <= 1 + settings.READ_AHEAD_FAST_API_PAGES
    assert table_snapshot(isolated_environment) == api_rows(demo_api)


def test_a_429_lowers_the_concurrency(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    demo_api.configure(
        records=3000, latency_ms=20, fail_status=429, fail_times=1, fail_offsets={1500}
    )

    with caplog.at_level(logging.WARNING, logger="fulfillment_assets.source"):
        assert materialize_all(instance, selection=RAW_ONLY).success

    assert "the API answered 429: fetching 4 pages at once from now on" in caplog.text
    assert table_snapshot(isolated_environment) == api_rows(demo_api)


class ForwardProxy:
    """A plain HTTP forward proxy on loopback: relays each `GET http://host/...` and counts it."""

    def __init__(self) -> None:
        proxy = self
        self.relayed = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                try:
                    with direct.open(self.path, timeout=30) as answer:
                        status, body = answer.status, answer.read()
                        content_type = answer.headers.get("content-type", "")
                except urllib.error.HTTPError as error:
                    status, body = error.code, error.read()
                    content_type = error.headers.get("content-type", "")
                proxy.relayed += 1
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_the_environments_proxy_settings_are_honoured(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = ForwardProxy()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    try:
        result = materialize_all(instance, selection=RAW_ONLY)
    finally:
        proxy.close()

    assert result.success
    assert table_snapshot(isolated_environment) == api_rows(demo_api)
    # Every page went through the proxy: 13 pages and the empty page that confirms the end.
    assert proxy.relayed == len(demo_api.requests) == 14


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_run_started_outside_the_project_directory_loads_and_checks_everything(
    demo_api: DemoApiServer, isolated_environment: Path, tmp_path: Path
) -> None:
    # dlt reads `.dlt/config.toml` from the working directory: there is none where this runs.
    dagster_home, elsewhere = tmp_path / "dagster_home", tmp_path / "elsewhere"
    dagster_home.mkdir()
    elsewhere.mkdir()
    shutil.copy(settings.PROJECT_ROOT / "dagster_home" / "dagster.yaml", dagster_home)

    materialize_everything_from_the_cli(dagster_home, cwd=elsewhere)

    # Every row knows its load: the checks, deletes and newest-version tracking rely on it.
    assert query(
        isolated_environment,
        "SELECT count(*), count(_dlt_load_id) FROM fulfillment.fulfillment_data",
    ) == [(1234, 1234)]
    ((modelled,),) = query(
        isolated_environment,
        "SELECT (SELECT count(*) FROM fulfillment.orders_validated) "
        "+ (SELECT count(*) FROM fulfillment.orders_rejected)",
    )
    assert modelled == 1234
