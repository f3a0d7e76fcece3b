"""The demo API's `updated_since` filter and data that changes between runs, over real HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests

from fulfillment_assets.demo_api import DEMO_API_KEY, DemoApiOptions, DemoApiServer
from fulfillment_assets.demo_api.changes import Changes
from fulfillment_assets.demo_api.records import base_updated_at, base_updated_bound

# The options conftest's `api` fixture starts this module's demo API with, and resets it to.
BASE = DemoApiOptions(records=300)
PATH = "/v1/fulfillment"


def walk(api: DemoApiServer, limit: int = 50, **params: Any) -> tuple[list[dict], set[int]]:
    """Every page of one walk; the records and the totals the pages reported."""
    rows: list[dict[str, Any]] = []
    totals = set()
    while True:
        query = {"api_key": DEMO_API_KEY, "offset": len(rows), "limit": limit, **params}
        body = requests.get(api.url + PATH, params=query, timeout=5).json()
        rows.extend(body["data"])
        totals.add(body["total"])
        if not body["data"]:
            return rows, totals


def test_updated_since_filters_sorts_by_id_and_counts_the_filtered_total(
    api: DemoApiServer,
) -> None:
    everything, _ = walk(api)
    since = sorted(r["updated_at"] for r in everything)[200]
    rows, totals = walk(api, updated_since=since)
    expected = [r for r in everything if r["updated_at"] >= since]
    assert rows == expected and len(rows) == 100
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert totals == {100}
    assert {r.updated_since for r in api.requests[-3:]} == {since}


def test_changed_added_and_removed_records_and_only_they_pass_a_late_filter(
    api: DemoApiServer,
) -> None:
    before, _ = walk(api)
    newest_before = max(r["updated_at"] for r in before)
    api.configure(changed_ids={5, 17, 250}, added_records=2, removed_ids={9, 300})
    after, totals = walk(api)
    by_id = {r["id"]: r for r in after}
    assert totals == {300 + 2 - 2}
    assert 9 not in by_id and 300 not in by_id and {301, 302} <= set(by_id)
    for record_id in (5, 17, 250):
        assert by_id[record_id]["updated_at"] > newest_before
        assert by_id[record_id]["amount"] != before[record_id - 1]["amount"]
    assert by_id[1] == before[0]
    # Inclusive: the newest base record is still in; after it, only the changed and added.
    changed, _ = walk(api, updated_since=newest_before)
    newest_id = next(r["id"] for r in before if r["updated_at"] == newest_before)
    assert [r["id"] for r in changed] == sorted([5, 17, 250, 301, 302, newest_id])
    after_base = dt.datetime.fromtimestamp(base_updated_bound(0) + 1, dt.UTC).isoformat()
    changed, totals = walk(api, updated_since=after_base)
    assert [r["id"] for r in changed] == [5, 17, 250, 301, 302] and totals == {5}


def test_a_param_name_option_and_an_api_that_ignores_it(api: DemoApiServer) -> None:
    late = "2030-01-01T00:00:00Z"
    api.configure(updated_since_param="modified_after")
    assert walk(api, modified_after=late)[0] == []
    assert len(walk(api, updated_since=late)[0]) == 300
    api.configure(updated_since_param=None)
    assert len(walk(api, modified_after=late)[0]) == 300


def test_an_unparseable_value_is_refused_naming_the_parameter(api: DemoApiServer) -> None:
    query = {"api_key": DEMO_API_KEY, "updated_since": "yesterday"}
    r = requests.get(api.url + PATH, params=query, timeout=5)
    assert r.status_code == 400 and "updated_since" in r.json()["error"]


def test_the_base_index_agrees_with_the_records() -> None:
    changes = Changes(
        DemoApiOptions(records=2000, changed_ids=frozenset({3}), removed_ids=frozenset({4}))
    )
    times = {i: base_updated_at(i) for i in range(1, 2001)}
    assert max(times.values()) <= base_updated_bound(0)
    since = sorted(times.values())[1500]
    expected = sorted({i for i, t in times.items() if t >= since} - {3, 4} | {3})
    assert changes.filtered(since) == expected
    assert changes.filtered(base_updated_bound(0) + 1) == [3]
