"""Faults and bad input, end to end through Dagster: each fails with a clear error that names the
page and what was wrong (never the key, never the whole body), and leaves the destination exactly
as it was; the next successful run loads everything."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer, make_record
from fulfillment_assets.source import check_base_url
from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    TEST_API_KEY,
    failure_message,
    materialize_all,
    query,
    table_snapshot,
)

RECORDS = 450  # five pages; the faults hit the third one (offset 200)

# A persistent 5xx names the API's host (the test's demo API on loopback) and the settings.
SERVER_ERROR_PHRASES = [
    "the fulfillment API at http://127.0.0.1:",
    "after 3 retries",
    "SOURCES__FULFILLMENT__BACKOFF_FACTOR",
    "SOURCES__FULFILLMENT__BASE_URL",
]
# fault options -> what the error must say (besides the offset)
FAULTS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "persistent 500": ({"fail_status": 500}, [*SERVER_ERROR_PHRASES, "HTTP 500"]),
    "persistent 503": ({"fail_status": 503}, [*SERVER_ERROR_PHRASES, "HTTP 503"]),
    "persistent 429": ({"fail_status": 429}, ["HTTP 429", "after 3 retries"]),
    "read timeout": ({"hang_offset": 200, "hang_seconds": 5}, ["no answer within the request"]),
    "dropped mid-body": ({"drop_connection_offset": 200}, ["connection dropped mid-body"]),
    "html error page": ({"malformed": "html"}, ["is not JSON (text/html", "<html"]),
    "truncated json": ({"malformed": "truncated"}, ["is not JSON"]),
    "empty body": ({"malformed": "empty_body"}, ["is not JSON"]),
    "data missing": ({"malformed": "no_data"}, ["has no `data` field"]),
    "data not a list": ({"malformed": "data_not_list"}, ["`data` of type dict"]),
    "record not an object": ({"malformed": "record_not_object"}, ["record #0 of type str"]),
    "record without id": ({"malformed": "record_without_id"}, ["without an `id`"]),
    "total not a number": ({"malformed": "total_not_number"}, ["`total` 'many'"]),
    "forbidden": ({"forbidden": True}, ["HTTP 403", "rejected the API key"]),
}
PAGE_FAULTS = {"fail_status", "malformed"}


@pytest.fixture
def loaded(demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path):
    """A destination that already holds a successful load, to prove a failed run changes nothing."""
    demo_api.configure(records=RECORDS)
    assert materialize_all(instance, selection=RAW_ONLY).success
    return table_snapshot(isolated_environment)


@pytest.mark.every_destination
@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_fails_clearly_and_leaves_the_destination_unchanged(
    fault: str,
    loaded: list,
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    options, expected_phrases = FAULTS[fault]
    monkeypatch.setenv("SOURCES__FULFILLMENT__REQUEST_TIMEOUT", "0.5")
    if PAGE_FAULTS & set(options) and "fail_offsets" not in options:
        options = {**options, "fail_offsets": {200}, "malformed_offset": 200}
    # A new version of every record: had anything of the failed run loaded, it would show.
    demo_api.configure(records=RECORDS, data_version=1, **options)

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert not result.success
    message = failure_message(result)
    for phrase in expected_phrases:
        assert phrase in message, message
    if not options.get("forbidden"):
        assert "offset 200" in message, message
    assert TEST_API_KEY not in message
    assert len(message) < 3000, "the error must not carry a whole response body"
    assert table_snapshot(isolated_environment) == loaded

    demo_api.configure(DemoApiOptions(records=RECORDS, data_version=1, api_key=TEST_API_KEY))
    assert materialize_all(instance, selection=RAW_ONLY).success
    after = table_snapshot(isolated_environment)
    assert len(after) == RECORDS and after != loaded  # the new version, every record once
    assert TEST_API_KEY not in capfd.readouterr().err


def test_connection_refused_fails_clearly(
    loaded: list,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", f"http://127.0.0.1:{closed_port}")

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    assert (
        "could not connect" in message and "offset 0" in message and "after 4 attempts" in message
    )
    assert TEST_API_KEY not in message and "api_key=***" in message
    assert table_snapshot(isolated_environment) == loaded


def test_an_endless_api_is_bounded_by_max_records(
    loaded: list,
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    demo_api.configure(records=RECORDS, endless=True, include_total=False)
    demo_api.clear_requests()
    monkeypatch.setenv("SOURCES__FULFILLMENT__MAX_RECORDS", "1000")

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert "still has pages after 1000 records" in failure_message(result)
    assert len(demo_api.requests) == 10
    assert table_snapshot(isolated_environment) == loaded


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.parametrize("retry_after", ["1", "http-date"])
def test_429_with_retry_after_waits_as_told_then_loads(
    retry_after: str, demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    # An HTTP-date has whole seconds: 2 s after the 429 is at least 1 s of waiting, and (its
    # `Date` and `Retry-After` truncated on either side of a second's edge) at most 3 s. The API
    # dates it when it answers: a date taken here could pass while a busy machine starts the run.
    value = "date+2" if retry_after == "http-date" else retry_after
    demo_api.configure(records=RECORDS, fail_status=429, fail_times=1, retry_after=value)

    assert materialize_all(instance, selection=RAW_ONLY).success

    first, second = demo_api.requests[:2]
    assert (first.offset, first.status, second.offset, second.status) == (0, 429, 0, 200)
    # The wait told: below 1 s the header was ignored; the bound leaves a busy machine 2 s past
    # the longest wait told (at 4.004 s it failed once, a whole-second edge plus a slow start).
    assert 0.9 <= second.at - first.at < 5
    assert len(table_snapshot(isolated_environment)) == RECORDS


def test_429_without_retry_after_backs_off_exponentially_then_loads(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Waits of 0.2, 0.4 and 0.8 s: far enough apart that a busy machine cannot reorder them.
    monkeypatch.setenv("SOURCES__FULFILLMENT__BACKOFF_FACTOR", "0.2")
    demo_api.configure(records=RECORDS, fail_status=429, fail_times=3, fail_offsets={0})

    assert materialize_all(instance, selection=RAW_ONLY).success

    at = [request.at for request in demo_api.requests if request.offset == 0]
    gaps = [b - a for a, b in zip(at, at[1:], strict=False)]
    assert len(at) == 4 and gaps[0] < gaps[1] < gaps[2]  # factor * 2**n
    assert gaps[2] >= 0.75
    assert len(table_snapshot(isolated_environment)) == RECORDS


@pytest.mark.every_destination
def test_a_rerun_and_overlapping_records_leave_one_row_per_id_with_the_newest_version(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    # Ids 5 and 77 come again on the last page, updated while the API was paged.
    demo_api.configure(records=RECORDS, duplicate_ids={5, 77}, duplicate_version=3)
    assert materialize_all(instance, selection=RAW_ONLY).success
    assert materialize_all(instance, selection=RAW_ONLY).success

    rows = query(
        isolated_environment,
        "SELECT id, count(*), max(updated_at) FROM fulfillment.fulfillment_data GROUP BY id",
    )
    assert len(rows) == RECORDS and all(count == 1 for _, count, _ in rows)
    newest = dict(
        query(
            isolated_environment,
            "SELECT id, amount FROM fulfillment.fulfillment_data WHERE id IN (5, 77)",
        )
    )
    assert newest == {i: make_record(i, version=3)["amount"] for i in (5, 77)}


def test_plain_http_to_a_non_loopback_host_is_refused_before_any_request(
    demo_api: DemoApiServer, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Never contacted: the source refuses the URL before it sends anything.
    monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", "http://fulfillment.example.com")

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    assert "plain http on a non-loopback host" in message
    assert "SOURCES__FULFILLMENT__ALLOW_INSECURE_HTTP" in message
    assert check_base_url("http://fulfillment.example.com", allow_insecure_http=True)
    assert check_base_url("https://fulfillment.example.com/", allow_insecure_http=False) == (
        "https://fulfillment.example.com"
    )
