"""Issue 21: the fault table's rows (docs/faults.md) hold for APIs of other shapes too, here a
page-number API (total items, header key) and a next-URL API (link in the body, bearer token):
a persisting 5xx, a lying total, a capped page size, a dripping page, an error body echoing the
key. Each fails clearly and leaves the destination as it was, or loads everything.

Page-number shapes name the page (`at page 3`) where offset shapes name the offset; for a
next-URL shape only the status and the API's host are asserted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from fulfillment_assets import settings
from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    TEST_API_KEY,
    failure_message,
    materialize_all,
    table_snapshot,
)
from fulfillment_assets_tests.shaped_api import (
    Auth,
    JsonLinkPages,
    PageNumberPages,
    Shape,
    ShapedApi,
    demo_records,
    serve_shaped_api,
    snapshot_rows,
)

RECORDS = 250  # five pages of 50; the faults hit the third (records 100-149, page 3)
FAULT_AT = 100
PAGE_NUMBER = Shape(
    auth=Auth(name="X-Api-Key", location="header"),
    path="/orders",
    data_selector="payload.orders",
    pages=PageNumberPages(page_size=50, page_param="page", total_items_path="meta.total_count"),
)
NEXT_URL = Shape(
    auth=Auth(type="bearer"),
    path="/api/orders",
    data_selector="results",
    pages=JsonLinkPages(next_url_path="next", page_size=50),
)
BOTH = pytest.mark.parametrize(
    "shaped", [PAGE_NUMBER, NEXT_URL], ids=["page number", "next url"], indirect=True
)


def where(shape: Shape) -> list[str]:
    """How a failure names the faulty page, where the shape has words for it."""
    return [f"GET {shape.path} at page 3"] if shape is PAGE_NUMBER else []


@pytest.fixture
def shaped(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ShapedApi]:
    with serve_shaped_api(request.param, monkeypatch, demo_records(RECORDS)) as api:
        yield api


@pytest.fixture
def loaded(
    shaped: ShapedApi, instance: DagsterInstance, isolated_environment: Path
) -> list[tuple[Any, ...]]:
    """A destination holding a good load; the API then serves a new version of every record, so
    anything a failed run loaded would show."""
    assert materialize_all(instance, selection=RAW_ONLY).success
    shaped.records = demo_records(RECORDS, version=1)
    shaped.requests.clear()
    return table_snapshot(isolated_environment)


@BOTH
def test_a_persisting_5xx_fails_naming_the_api_and_the_next_good_run_loads_everything(
    shaped: ShapedApi,
    loaded: list[tuple[Any, ...]],
    instance: DagsterInstance,
    isolated_environment: Path,
) -> None:
    shaped.inject(status=500, status_at=FAULT_AT)

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    for phrase in [
        f"the fulfillment API at {shaped.url} answered HTTP 500",
        f"after {settings.MAX_RETRIES} retries",
        "SOURCES__FULFILLMENT__BACKOFF_FACTOR",
        *where(shaped.shape),
    ]:
        assert phrase in message, message
    assert TEST_API_KEY not in message and len(message) < 3000
    failed = [r for r in shaped.requests if r.offset == FAULT_AT]
    assert [r.status for r in failed] == [500] * (1 + settings.MAX_RETRIES)
    assert table_snapshot(isolated_environment) == loaded

    shaped.inject()
    assert materialize_all(instance, selection=RAW_ONLY).success
    assert table_snapshot(isolated_environment) == snapshot_rows(shaped.records) != loaded


@pytest.mark.parametrize(
    ("reported", "served"),
    [(150, 200), (400, 250)],  # under: the page after the 150th record is not empty
    ids=["under-reported", "over-reported"],
)
@pytest.mark.parametrize("shaped", [PAGE_NUMBER], ids=["page number"], indirect=True)
def test_a_total_of_items_that_lies_fails_naming_both_numbers_and_loads_nothing(
    reported: int,
    served: int,
    shaped: ShapedApi,
    loaded: list[tuple[Any, ...]],
    instance: DagsterInstance,
    isolated_environment: Path,
) -> None:
    shaped.inject(reported_total=reported)

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    assert f"reports total {reported}" in message and f"served {served} records" in message
    assert table_snapshot(isolated_environment) == loaded


@BOTH
def test_an_api_capping_its_page_size_still_loads_every_record_once(
    shaped: ShapedApi, instance: DagsterInstance, isolated_environment: Path
) -> None:
    shaped.inject(max_page_size=20)  # 20 a page, whatever the 50 asked

    assert materialize_all(instance, selection=RAW_ONLY).success

    assert table_snapshot(isolated_environment) == snapshot_rows(shaped.records)
    served = {r.offset for r in shaped.requests if r.status == 200}
    assert served >= set(range(0, RECORDS, 20))  # every capped page was asked for


@BOTH
def test_a_dripping_page_fails_within_the_request_timeout_and_loads_nothing(
    shaped: ShapedApi,
    loaded: list[tuple[Any, ...]],
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every read gets bytes within 0.2 s; the page as a whole would take many minutes.
    monkeypatch.setenv("SOURCES__FULFILLMENT__REQUEST_TIMEOUT", "0.5")
    shaped.inject(drip_at=FAULT_AT)

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    for phrase in [
        "no answer within the request timeout",
        "SOURCES__FULFILLMENT__REQUEST_TIMEOUT",
        *where(shaped.shape),
    ]:
        assert phrase in message, message
    started = [r.started for r in shaped.requests if r.offset == FAULT_AT]
    assert len(started) == 1 + settings.MAX_RETRIES
    # Each attempt gave up at its deadline: the next began within it (and a short backoff).
    gaps = [later - earlier for earlier, later in zip(started, started[1:], strict=False)]
    assert all(gap < 0.5 + 1.0 for gap in gaps), gaps
    assert table_snapshot(isolated_environment) == loaded


@BOTH
@pytest.mark.parametrize("refusal", ["500", "401"])
def test_a_key_echoed_in_an_error_body_is_never_shown_or_logged(
    refusal: str,
    shaped: ShapedApi,
    instance: DagsterInstance,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    if refusal == "401":  # the API expects another key, and says which one it got
        shaped.key = "the-key-the-api-expects"
        shaped.inject(echo_key=True)
    else:
        shaped.inject(status=500, status_at=FAULT_AT, echo_key=True)

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    assert f"HTTP {refusal}" in message and "***" in message, message
    assert TEST_API_KEY not in message
    events = [str(entry) for entry in instance.all_logs(result.run_id)]
    assert events and not [event for event in events if TEST_API_KEY in event]
    printed = capfd.readouterr()
    assert TEST_API_KEY not in printed.out + printed.err + caplog.text
