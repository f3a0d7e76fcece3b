"""Pages are read ahead where the next request is known before the page arrives (offsets, page
numbers up to a count the API reports), and walked one by one elsewhere (next links, cursors):
the run's metadata says which, and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance

from fulfillment_assets_tests.helpers import RAW_ONLY, materialize_all, query
from fulfillment_assets_tests.shaped_api import (
    Auth,
    JsonLinkPages,
    PageNumberPages,
    Shape,
    ShapedRequest,
    demo_records,
    serve_shaped_api,
)

RECORDS = 600  # 12 pages of 50


def _most_at_once(requests: list[ShapedRequest]) -> int:
    """The most requests the API was answering at one moment."""
    moments = sorted(
        [(r.started, 1) for r in requests] + [(r.finished or r.started, -1) for r in requests]
    )
    at_once = most = 0
    for _, step in moments:
        at_once += step
        most = max(most, at_once)
    return most


@pytest.mark.parametrize(
    ("shape", "reads_ahead"),
    [
        (
            Shape(
                auth=Auth(name="X-Api-Key", location="header"),
                path="/orders",
                data_selector="orders",
                pages=PageNumberPages(page_size=50, total_items_path="meta.total_count"),
            ),
            True,
        ),
        (Shape(pages=PageNumberPages(page_size=50, total_pages_path="meta.pages")), True),
        (Shape(auth=Auth(type="bearer"), pages=JsonLinkPages(page_size=50)), False),
    ],
    ids=["page number with a count of records", "page number with a count of pages", "next link"],
)
def test_pages_are_read_ahead_only_where_the_next_request_is_known(
    shape: Shape,
    reads_ahead: bool,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve_shaped_api(shape, monkeypatch, demo_records(RECORDS)) as api:
        api.inject(latency=0.05)  # a slow API gets the whole window (8 pages)
        result = materialize_all(instance, selection=RAW_ONLY)
        requests = list(api.requests)

    (event,) = result.get_asset_materialization_events()
    fetch = str(event.materialization.metadata["walk_fetch"].value)
    assert fetch.startswith("read ahead" if reads_ahead else "sequential: each page names"), fetch
    most = _most_at_once(requests)
    assert most > 1 if reads_ahead else most == 1, most
    # Each page asked once: nothing fetched ahead past the count, nothing asked twice.
    pages = [tuple(sorted((k, v[0]) for k, v in r.query.items())) for r in requests]
    assert len(pages) == len(set(pages)) <= RECORDS // 50 + 1
    count = "SELECT count(*), count(DISTINCT id) FROM fulfillment.fulfillment_data"
    assert query(isolated_environment, count) == [(RECORDS, RECORDS)]
