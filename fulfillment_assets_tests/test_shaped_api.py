"""The shaped fake API itself (`shaped_api.py`), before any test trusts it: walked by dlt's own
rest_api with the settings a shape produces, every shape's pages hold every record exactly once;
it refuses a missing or misplaced credential; each fault does what it says."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any, cast

import pytest
import requests
from dlt.sources.rest_api import RESTAPIConfig, rest_api_source

from fulfillment_assets_tests.helpers import TEST_API_KEY
from fulfillment_assets_tests.shaped_api import (
    DRIP_INTERVAL,
    Auth,
    CursorPages,
    HeaderLinkPages,
    JsonLinkPages,
    OffsetPages,
    PageNumberPages,
    Shape,
    ShapedApi,
    demo_records,
    serve_shaped_api,
)

RECORDS = 250
SHAPES = {
    "seed": Shape(),
    "header key": Shape(auth=Auth(name="X-Api-Key", location="header")),
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
    "offset, no total": Shape(pages=OffsetPages(limit=60, total_path=None)),
    "page number, total items": Shape(
        data_selector="payload.orders",
        pages=PageNumberPages(page_size=100, total_items_path="meta.total_count"),
    ),
    "page number from 0, total pages": Shape(
        pages=PageNumberPages(
            page_size=40,
            page_size_param="size",
            base_page=0,
            page_param="p",
            total_pages_path="meta.total_pages",
        )
    ),
    "page number, no total": Shape(pages=PageNumberPages(page_size=70)),
    "next url in the body": Shape(
        data_selector="results", pages=JsonLinkPages(next_url_path="links.next", page_size=60)
    ),
    "link header": Shape(auth=Auth(type="bearer"), pages=HeaderLinkPages(page_size=80)),
    "cursor": Shape(
        auth=Auth(name="X-Api-Key", location="header"),
        data_selector="orders",
        pages=CursorPages(cursor_path="meta.next_cursor", cursor_param="cursor", page_size=90),
    ),
}


def dlt_auth(shape: Shape, key: str) -> dict[str, Any]:
    """rest_api's `client.auth`: the shape's setting plus the secret under rest_api's name."""
    secret_name = {"api_key": "api_key", "bearer": "token", "http_basic": "password"}
    return {**shape.auth.setting(), secret_name[shape.auth.type]: key}


def in_dlt_words(endpoint: dict[str, Any]) -> dict[str, Any]:
    """The endpoint as plain rest_api takes it: the project's `total_items_path` is not dlt's,
    so such a walk ends on its empty page there."""
    paginator = dict(endpoint["paginator"])
    if paginator.pop("total_items_path", None):
        paginator["total_path"] = None
    return {**endpoint, "paginator": paginator}


def dlt_walk(api: ShapedApi) -> list[dict[str, Any]]:
    """Every record dlt's rest_api yields for the shape's settings."""
    config: dict[str, Any] = {
        "client": {"base_url": api.url, "auth": dlt_auth(api.shape, api.key)},
        "resources": [{"name": "orders", "endpoint": in_dlt_words(api.shape.endpoint_setting())}],
    }
    return list(rest_api_source(cast(RESTAPIConfig, config)).resources["orders"])


def credentials(shape: Shape, key: str = TEST_API_KEY) -> dict[str, Any]:
    """`requests.get` keywords carrying the key where the shape wants it."""
    auth = shape.auth
    if auth.type == "api_key":
        where = "params" if auth.location == "query" else "headers"
        return {where: {auth.name: key}}
    if auth.type == "bearer":
        return {"headers": {"Authorization": f"Bearer {key}"}}
    return {"auth": (auth.username, key)}


def get(api: ShapedApi, params: dict[str, Any] | None = None, **sent: Any) -> requests.Response:
    """A page as a client of the shape asks for it: credential, the shape's params, `params`."""
    keywords = {**credentials(api.shape), **sent}
    keywords["params"] = {
        **keywords.get("params", {}),
        **api.shape.pages.params(),
        **(params or {}),
    }
    return requests.get(api.url + api.shape.path, timeout=10, **keywords)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES)
def test_walked_by_dlts_rest_api_every_shape_yields_every_record_once(shape: Shape) -> None:
    with ShapedApi(shape, demo_records(RECORDS)) as api:
        records = dlt_walk(api)

        assert sorted(record["id"] for record in records) == list(range(1, RECORDS + 1))
        assert sorted(records, key=lambda record: record["id"]) == api.records
        assert {request.status for request in api.requests} == {200}
        # The key went where the shape says, and nowhere else, on every page.
        places = {frozenset(api.credential_places(request)) for request in api.requests}
        assert places == {frozenset({shape.auth.sent_in})}
        params = {name: [str(value)] for name, value in shape.pages.params().items()}
        assert all(params.items() <= request.query.items() for request in api.requests)


@pytest.mark.parametrize(
    "shape", [SHAPES["seed"], SHAPES["header key"], SHAPES["bearer"], SHAPES["basic"]]
)
def test_a_missing_wrong_or_misplaced_credential_is_refused_with_a_json_401(shape: Shape) -> None:
    misplaced = (
        {"headers": {"X-Api-Key": TEST_API_KEY}}
        if shape.auth.sent_in.startswith("query")
        else {"params": {"api_key": TEST_API_KEY}, "headers": {}, "auth": None}
    )
    with ShapedApi(shape) as api:
        missing = requests.get(api.url + shape.path, timeout=10)
        wrong = requests.get(api.url + shape.path, timeout=10, **credentials(shape, "sk_wrong"))
        elsewhere = requests.get(api.url + shape.path, timeout=10, **misplaced)
        right = get(api)

    for refused in (missing, wrong, elsewhere):
        assert refused.status_code == 401
        assert refused.json() == {"error": "missing or wrong credentials"}
    assert right.status_code == 200


def test_a_shapes_settings_are_rest_apis_words() -> None:
    assert {name: json.loads(value) for name, value in Shape().environment().items()} == {
        "SOURCES__FULFILLMENT__AUTH": {"type": "api_key", "name": "api_key", "location": "query"},
        "SOURCES__FULFILLMENT__ENDPOINT": {
            "path": "/v1/fulfillment",
            "data_selector": "data",
            "paginator": {
                "type": "offset",
                "limit": 100,
                "offset_param": "offset",
                "limit_param": "limit",
                "total_path": "total",
            },
        },
    }
    assert SHAPES["page number, total items"].endpoint_setting() == {
        "path": "/v1/fulfillment",
        "data_selector": "payload.orders",
        "params": {"per_page": 100},
        "paginator": {
            "type": "page_number",
            "base_page": 1,
            "page_param": "page",
            "total_items_path": "meta.total_count",
        },
    }
    assert SHAPES["page number, no total"].endpoint_setting()["paginator"]["total_path"] is None
    assert SHAPES["basic"].auth.setting() == {"type": "http_basic", "username": "shop"}
    assert SHAPES["bearer"].auth.setting() == {"type": "bearer"}
    assert SHAPES["cursor"].endpoint_setting()["paginator"] == {
        "type": "cursor",
        "cursor_path": "meta.next_cursor",
        "cursor_param": "cursor",
    }


def test_serve_shaped_api_configures_the_source_for_the_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shape = SHAPES["cursor"]
    with serve_shaped_api(shape, monkeypatch) as api:
        assert os.environ["SOURCES__FULFILLMENT__BASE_URL"] == api.url
        assert os.environ["SOURCES__FULFILLMENT__API_KEY"] == TEST_API_KEY
        assert json.loads(os.environ["SOURCES__FULFILLMENT__AUTH"]) == shape.auth.setting()
        endpoint = json.loads(os.environ["SOURCES__FULFILLMENT__ENDPOINT"])
        assert endpoint == shape.endpoint_setting()
        assert len(get(api).json()["orders"]) == 90


def test_a_status_fails_every_request_the_first_n_or_one_page() -> None:
    with ShapedApi(SHAPES["seed"]) as api:
        api.inject(status=503)
        assert [get(api).status_code for _ in range(3)] == [503, 503, 503]
        api.inject(status=500, status_times=2)
        assert [get(api).status_code for _ in range(3)] == [500, 500, 200]
        api.inject(status=500, status_at=100)
        assert get(api, {"offset": 0}).status_code == 200
        failed = get(api, {"offset": 100})
        assert (failed.status_code, failed.json()) == (500, {"error": "internal error"})
        assert api.requests[-1].offset == 100


def test_a_capped_page_size_serves_fewer_and_numbered_pages_follow_the_served_size() -> None:
    with ShapedApi(SHAPES["seed"]) as api:
        api.inject(max_page_size=20)
        assert [r["id"] for r in get(api, {"offset": 40, "limit": 100}).json()["data"]] == list(
            range(41, 61)
        )
    with ShapedApi(SHAPES["page number, total items"]) as api:
        api.inject(max_page_size=20)
        page = get(api, {"page": 2}).json()
        assert [r["id"] for r in page["payload"]["orders"]] == list(range(21, 41))
        assert page["meta"]["total_count"] == RECORDS
    with ShapedApi(SHAPES["next url in the body"]) as api:
        api.inject(max_page_size=20)
        first = get(api).json()
        second = requests.get(first["links"]["next"], timeout=10, **credentials(api.shape)).json()
        assert [r["id"] for r in second["results"]] == list(range(21, 41))


def test_a_lying_total_is_reported_as_told() -> None:
    with ShapedApi(SHAPES["offset, other names, nested total"]) as api:
        api.inject(reported_total=2000)
        page = get(api, {"take": 50}).json()
        assert (len(page["results"]), page["meta"]["count"]) == (50, 2000)
    with ShapedApi(SHAPES["page number from 0, total pages"]) as api:
        api.inject(reported_total=100)
        assert get(api).json()["meta"]["total_pages"] == 3  # 100 records in pages of 40


def test_the_last_page_says_so_in_each_link_and_cursor_shape() -> None:
    with ShapedApi(SHAPES["link header"], demo_records(80)) as api:
        assert "Link" not in get(api).headers
    with ShapedApi(SHAPES["next url in the body"], demo_records(60)) as api:
        assert get(api).json()["links"]["next"] is None
    with ShapedApi(SHAPES["cursor"], demo_records(91)) as api:
        first = get(api).json()
        last = get(api, {"cursor": first["meta"]["next_cursor"]}).json()
        assert ([r["id"] for r in last["orders"]], last["meta"]["next_cursor"]) == ([91], None)


def test_a_dripping_page_sends_a_few_bytes_at_a_time() -> None:
    with ShapedApi(SHAPES["seed"]) as api:
        api.inject(drip_at=100)
        started = time.monotonic()
        with get(api, {"offset": 100}, stream=True) as dripping:
            received = b""
            while time.monotonic() - started < 5 * DRIP_INTERVAL:
                received += dripping.raw.read(4)
            # Each read gets bytes within a read timeout; the page would take many minutes.
            assert 0 < len(received) < int(dripping.headers["Content-Length"]) / 100
        assert get(api, {"offset": 0}).status_code == 200  # only the page at 100 drips


@pytest.mark.parametrize("shape", [SHAPES["header key"], SHAPES["bearer"], SHAPES["basic"]])
def test_error_bodies_echo_the_credential_received_when_told(shape: Shape) -> None:
    with ShapedApi(shape, key="the-key-the-api-expects") as api:
        api.inject(echo_key=True)
        refused = get(api)
        api.key = TEST_API_KEY
        api.inject(status=500, echo_key=True)
        failed = get(api)

    assert (refused.status_code, failed.status_code) == (401, 500)
    assert TEST_API_KEY in refused.json()["error"] and TEST_API_KEY in failed.json()["error"]


def test_latency_delays_every_answer_and_basic_auth_is_decoded_in_the_log() -> None:
    with ShapedApi(SHAPES["basic"]) as api:
        api.inject(latency=0.3)
        assert get(api).status_code == 200
    (request,) = api.requests
    assert request.finished is not None and request.finished - request.started >= 0.3
    sent = base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode()
    assert sent == f"shop:{TEST_API_KEY}"
    assert api.credential_places(request) == {"header authorization"}
