"""Issue 21: an API of another shape is loaded by configuration alone, in dlt rest_api's words
(`SOURCES__FULFILLMENT__AUTH`, `SOURCES__FULFILLMENT__ENDPOINT`): its credential kind, its path,
where its records sit, how it pages. Each shape loads every record exactly once, the checks
judge it as they judge the seed's API, and the key travels only where the shape wants it."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetCheckSeverity, DagsterInstance

from fulfillment_assets_tests.helpers import CHECK_NAMES, materialize_all, query, table_snapshot
from fulfillment_assets_tests.shaped_api import (
    Auth,
    CursorPages,
    HeaderLinkPages,
    JsonLinkPages,
    OffsetPages,
    PageNumberPages,
    Shape,
    demo_records,
    serve_shaped_api,
    snapshot_rows,
)

pytestmark = pytest.mark.every_destination

RECORDS = 250
HEADER_KEY = Auth(name="X-Api-Key", location="header")
SHAPES = {
    # The seed's shape, every setting spelled out: passes before and after issue 21.
    "seed": Shape(),
    "header key": Shape(auth=HEADER_KEY),
    "bearer": Shape(auth=Auth(type="bearer")),
    "basic": Shape(auth=Auth(type="http_basic", username="shop")),
    "offset, other names, nested total": Shape(
        auth=Auth(name="key"),
        path="/api/v2/orders",
        data_selector="results",
        pages=OffsetPages(
            limit=50, offset_param="skip", limit_param="take", total_path="meta.count"
        ),
    ),
    "page number, total items": Shape(
        auth=HEADER_KEY,
        path="/orders",
        data_selector="payload.orders",
        pages=PageNumberPages(
            page_size=50, page_param="page", base_page=1, total_items_path="meta.total_count"
        ),
    ),
    "page number, total pages": Shape(
        auth=Auth(type="bearer"),
        data_selector="orders",
        pages=PageNumberPages(
            page_size=100,
            page_size_param="size",
            page_param="p",
            base_page=0,
            total_pages_path="meta.total_pages",
        ),
    ),
    "next url in the body": Shape(
        data_selector="results", pages=JsonLinkPages(next_url_path="next", page_size=100)
    ),
    "link header": Shape(auth=Auth(type="bearer"), pages=HeaderLinkPages(page_size=100)),
    "cursor": Shape(
        auth=HEADER_KEY,
        data_selector="orders",
        pages=CursorPages(cursor_path="meta.next_cursor", cursor_param="cursor", page_size=100),
    ),
}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES)
def test_a_shape_loads_every_record_once_checks_as_the_seed_and_sends_the_key_as_told(
    shape: Shape,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = demo_records(RECORDS)
    with serve_shaped_api(shape, monkeypatch, records) as api:
        result = materialize_all(instance)

    assert result.success
    assert query(
        isolated_environment,
        "SELECT count(*), count(DISTINCT id) FROM fulfillment.fulfillment_data",
    ) == [(RECORDS, RECORDS)]
    assert table_snapshot(isolated_environment) == snapshot_rows(records)

    # As on the seed's API: only the demo records' few null fields warn.
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == CHECK_NAMES
    failed = {
        name: (e.severity, e.metadata["offending_rows"].value)
        for name, e in evaluations.items()
        if not e.passed
    }
    assert failed == {
        "customer_id_not_null": (AssetCheckSeverity.WARN, nulls(records, "customer_id")),
        "order_status_not_null": (AssetCheckSeverity.WARN, nulls(records, "order_status")),
    }

    # Every request was answered, asked with the shape's params, and carried the key only where
    # the shape says (never in the query for a header, bearer or basic credential).
    assert api.requests and {request.status for request in api.requests} == {200}
    params = {name: [str(value)] for name, value in shape.pages.params().items()}
    assert all(params.items() <= request.query.items() for request in api.requests)
    places = {frozenset(api.credential_places(request)) for request in api.requests}
    assert places == {frozenset({shape.auth.sent_in})}


def nulls(records: list[dict[str, object]], name: str) -> int:
    return sum(1 for record in records if record.get(name) is None)
