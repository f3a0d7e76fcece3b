"""Listings that move while the walk runs, against small fake APIs of the test's own (real HTTP
servers on loopback): nothing the API has is lost, and nothing live is marked deleted.

A busy shop creates orders while the walk runs (appended, or at the front of a newest-first
listing, `total` growing between pages); a listing sorted by `updated_at` moves every updated
order to the front, shifting the rest under the offsets. The walk measures whether it received
every id and walks again when not (`source/completeness.py`)."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetSelection, DagsterInstance

from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets_tests.fake_api import serve_fake_api
from fulfillment_assets_tests.helpers import RAW_ONLY, materialize_all, query

RAW_WITH_CHECKS = AssetSelection.assets(["fulfillment", "fulfillment_data"])


class LaggingReplica:
    """2,000 orders, no `total`; the page at `empty_offset` answers `{"data": []}` once per run
    (a lagging replica), then whole."""

    def __init__(self, records: int = 2000, empty_offset: int = 800) -> None:
        self.records = records
        self.empty_offset = empty_offset
        self.empty_answers_left = 1
        self.requests: list[int] = []

    def page(self, offset: int, limit: int, params: dict[str, str]) -> dict:
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
    with serve_fake_api(api, monkeypatch):
        yield api


@pytest.mark.slow  # over 5 s: left out of the fast lane
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


class BusyShop:
    """`records` orders whose listing changes before every page served but the first, as a busy
    shop's does while it is walked, by `listing`:
    - "ids ascending": `changes` new orders per page, appended (ids ascending);
    - "newest first": `changes` new orders per page, at the front (ids descending);
    - "updated_at desc": `changes` orders updated per page, each moving to the front.
    `total` (the listing's length) on every page unless `with_total` is off."""

    START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

    def __init__(
        self, listing: str, records: int = 3000, changes: int = 2, with_total: bool = True
    ) -> None:
        self.listing, self.changes, self.with_total = listing, changes, with_total
        self.orders = {i: self._order(i, version=i) for i in range(1, records + 1)}
        self.initial_ids = set(self.orders)
        self.clock = records  # updated_at in seconds after START, one tick per change
        self.busy = True
        self.pages_served = 0
        self.random = random.Random(18)
        self.lock = threading.Lock()

    def _order(self, order_id: int, version: int) -> dict:
        updated = (self.START + dt.timedelta(seconds=version)).isoformat()
        return {
            "id": order_id,
            "customer_id": f"cus_{order_id % 97}",
            "order_status": "shipped",
            "updated_at": updated,
            "amount": 1.0,
        }

    def _change(self) -> None:
        self.clock += 1
        if self.listing == "updated_at desc":
            order_id = self.random.choice(sorted(self.initial_ids))
        else:
            order_id = max(self.orders) + 1
        self.orders[order_id] = self._order(order_id, version=self.clock)

    def _sorted(self) -> list[dict]:
        if self.listing == "ids ascending":
            return [self.orders[i] for i in sorted(self.orders)]
        if self.listing == "newest first":
            return [self.orders[i] for i in sorted(self.orders, reverse=True)]
        return sorted(self.orders.values(), key=lambda o: (o["updated_at"], o["id"]), reverse=True)

    def page(self, offset: int, limit: int, params: dict[str, str]) -> dict:
        with self.lock:
            if self.busy and self.pages_served:
                for _ in range(self.changes):
                    self._change()
            self.pages_served += 1
            listing = self._sorted()
            body: dict = {"data": listing[offset : offset + limit]}
            if self.with_total:
                body["total"] = len(listing)
            return body


@pytest.fixture
def shop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[BusyShop]:
    options = dict(request.param)
    if "page_concurrency" in options:  # a setting of the run, not of the shop
        concurrency = options.pop("page_concurrency")
        monkeypatch.setenv("SOURCES__FULFILLMENT__PAGE_CONCURRENCY", str(concurrency))
    api = BusyShop(**options)
    with serve_fake_api(api, monkeypatch):
        yield api


def _raw_counts() -> tuple[int, int, int]:
    ((rows, distinct, deleted),) = query(
        Path(),
        "SELECT count(*), count(DISTINCT id), count(_deleted_at) FROM fulfillment.fulfillment_data",
    )
    return rows, distinct, deleted


def _loaded_ids() -> set[int]:
    return {row[0] for row in query(Path(), "SELECT id FROM fulfillment.fulfillment_data")}


def _walk_metadata(instance: DagsterInstance) -> dict[str, Any]:
    from dagster import AssetKey

    event = instance.get_latest_materialization_event(AssetKey(["fulfillment", "fulfillment_data"]))
    assert event is not None and event.asset_materialization is not None
    return {label: entry.value for label, entry in event.asset_materialization.metadata.items()}


@pytest.mark.every_destination
@pytest.mark.parametrize(
    "shop",
    [
        {"listing": "ids ascending"},
        {"listing": "newest first"},
        {"listing": "updated_at desc", "changes": 1},
        {"listing": "updated_at desc", "changes": 1, "page_concurrency": 1},
    ],
    ids=[
        "creations appended",
        "creations newest first",
        "updates reorder updated_at desc",
        "updates reorder updated_at desc, one page at a time",
    ],
    indirect=True,
)
def test_a_listing_that_moves_during_the_walk_loads_every_order_and_marks_none_deleted(
    shop: BusyShop, instance: DagsterInstance
) -> None:
    for run in range(2):  # run 2 is a full walk that would mark what it missed as deleted
        assert materialize_all(instance, selection=RAW_WITH_CHECKS).success
        rows, distinct, deleted = _raw_counts()
        # Every order that existed when the walk started, once; none marked deleted.
        assert shop.initial_ids <= _loaded_ids(), sorted(shop.initial_ids - _loaded_ids())[:20]
        assert (rows, deleted) == (distinct, 0), run
        walk = _walk_metadata(instance)
        assert walk["walk_complete"] is True, walk["walk_summary"]
        assert walk["records_possibly_missing"] == 0
        assert walk["rows_marked_deleted"] == 0
    if shop.listing == "updated_at desc":
        # The reordering shifted records past the offsets: the walk measured it and walked again.
        assert walk["walk_passes"] >= 2, walk["walk_summary"]


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.parametrize(
    "shop", [{"listing": "updated_at desc", "changes": 3}], ids=["updates"], indirect=True
)
def test_a_walk_still_incomplete_after_its_passes_loads_what_it_has_says_so_and_marks_nothing(
    shop: BusyShop, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__MAX_WALK_PASSES", "1")
    assert materialize_all(instance, selection=RAW_ONLY).success  # the first load: all of it
    shop.busy = True

    result = materialize_all(instance, selection=RAW_WITH_CHECKS)

    assert result.success
    walk = _walk_metadata(instance)
    assert walk["walk_complete"] is False and walk["walk_passes"] == 1
    missing = walk["records_possibly_missing"]
    assert missing > 0, walk["walk_summary"]
    # Nothing the walk was shifted past is marked deleted.
    assert _raw_counts()[2] == 0 and walk["rows_marked_deleted"] == 0
    (check,) = [
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == "walk_complete"
    ]
    assert not check.passed and check.severity.value == "WARN"
    assert f"may have missed up to {missing} records" in str(check.description)
    assert "SOURCES__FULFILLMENT__MAX_WALK_PASSES" in str(check.description)
    # The same line in the run's log, as the UI shows it.
    log = [record.user_message for record in instance.all_logs(result.run_id)]
    assert str(check.description) in log or walk["walk_summary"] in log
    assert any(
        f"the walk may have missed up to {missing} records" in line
        and "SOURCES__FULFILLMENT__MAX_WALK_PASSES" in line
        for line in log
    )


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.parametrize("shop", [{"listing": "ids ascending"}], ids=["appended"], indirect=True)
def test_a_full_walk_that_marks_rows_deleted_says_how_many_in_a_warning(
    shop: BusyShop, instance: DagsterInstance
) -> None:
    shop.busy = False
    assert materialize_all(instance, selection=RAW_ONLY).success
    for order_id in (5, 6, 7):
        del shop.orders[order_id]

    result = materialize_all(instance, selection=RAW_WITH_CHECKS)

    assert _walk_metadata(instance)["rows_marked_deleted"] == 3
    (check,) = [
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == "no_rows_marked_deleted"
    ]
    assert not check.passed and check.severity.value == "WARN"
    assert "marked 3 rows deleted" in str(check.description) and "ids 5, 6, 7" in str(
        check.description
    )


def test_a_total_that_changes_between_pages_is_no_failure(
    demo_api: DemoApiServer, instance: DagsterInstance
) -> None:
    # The demo API reports 50 more from offset 200 on: a listing that grew while it was walked.
    demo_api.configure(records=450, malformed="total_changes", malformed_offset=200)

    assert materialize_all(instance, selection=RAW_ONLY).success

    assert _raw_counts() == (450, 450, 0)
    walk = _walk_metadata(instance)
    assert walk["walk_complete"] is True and walk["walk_passes"] == 1, walk["walk_summary"]


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.parametrize(
    "shop",
    [
        {"listing": "ids ascending", "with_total": False},
        {"listing": "newest first", "with_total": False},
    ],
    ids=["creations appended", "creations newest first"],
    indirect=True,
)
def test_a_busy_shop_without_total_loads_every_order_and_marks_none_deleted(
    shop: BusyShop, instance: DagsterInstance
) -> None:
    # Without `total`, a shop selling during the walk grows the listing's tail a page at a
    # time (newest first: its oldest orders pushed there): the walk ends after short pages one
    # after another instead of chasing it for as long as the shop sells. Such a walk is never
    # proven whole: everything received is loaded, nothing is marked deleted, a check says so.
    for run in range(2):  # run 2 is a full walk that would mark what it missed as deleted
        result = materialize_all(instance, selection=RAW_WITH_CHECKS)
        assert result.success
        rows, distinct, deleted = _raw_counts()
        assert shop.initial_ids <= _loaded_ids(), sorted(shop.initial_ids - _loaded_ids())[:20]
        assert (rows, deleted) == (distinct, 0), run
        walk = _walk_metadata(instance)
        assert walk["walk_complete"] is False and walk["rows_marked_deleted"] == 0
        assert "its end growing while it was walked" in walk["walk_summary"]
        # Appended orders shift nothing: another pass could only chase the tail again.
        assert walk["walk_passes"] == (1 if shop.listing == "ids ascending" else 3)
        (check,) = [
            evaluation
            for evaluation in result.get_asset_check_evaluations()
            if evaluation.check_name == "walk_complete"
        ]
        assert not check.passed and check.severity.value == "WARN"


class PagesOfVaryingSize:
    """2,000 orders, no `total`, a listing that stands still; each page holds as many records
    as `sizes` says for its number (an API capping pages by bytes), whatever the limit asked."""

    def __init__(self, sizes: list[int], records: int = 2000) -> None:
        self.sizes, self.records = sizes, records
        self.requests = 0

    def page(self, offset: int, limit: int, params: dict[str, str]) -> dict:
        size = min(limit, self.sizes[min(self.requests, len(self.sizes) - 1)])
        self.requests += 1
        ids = range(offset + 1, min(offset + size, self.records) + 1)
        return {
            "data": [
                {"id": i, "customer_id": f"cus_{i % 97}", "order_status": "shipped", "amount": 1.0}
                for i in ids
            ]
        }


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_pages_that_vary_in_size_without_total_end_no_walk_and_slivers_are_a_setting(
    monkeypatch: pytest.MonkeyPatch, instance: DagsterInstance
) -> None:
    # Pages of 60 to 100 records (a byte cap): shorter than the largest, yet never a tail.
    varying = PagesOfVaryingSize([100, 60, 85, 70, 95, 61, 77])
    with serve_fake_api(varying, monkeypatch):
        assert materialize_all(instance, selection=RAW_ONLY).success
    assert _raw_counts() == (2000, 2000, 0)
    assert _walk_metadata(instance)["walk_complete"] is True

    # Pages of 20 after one of 100 look like a growing tail: the walk ends after three, says it
    # cannot prove itself whole and names the setting; set to 0, only an empty page ends it.
    slivers = PagesOfVaryingSize([100, 20])
    with serve_fake_api(slivers, monkeypatch):
        result = materialize_all(instance, selection=RAW_WITH_CHECKS)
        assert result.success
        walk = _walk_metadata(instance)
        assert walk["walk_complete"] is False and walk["rows_marked_deleted"] == 0
        assert "SOURCES__FULFILLMENT__TAIL_CHASE_PAGES" in walk["walk_summary"]
        assert _raw_counts() == (2000, 2000, 0)  # the first walk's rows, none marked deleted

        monkeypatch.setenv("SOURCES__FULFILLMENT__TAIL_CHASE_PAGES", "0")
        slivers.requests = 0
        assert materialize_all(instance, selection=RAW_ONLY).success
        assert slivers.requests == 1 + 1900 // 20 + 1  # every page, then the empty one
    assert _walk_metadata(instance)["walk_complete"] is True
    assert _raw_counts() == (2000, 2000, 0)
