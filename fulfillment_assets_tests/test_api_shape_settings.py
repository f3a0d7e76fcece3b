"""The API's shape is configuration (source/shape.py): the seed's by default, in rest_api's keys.

A shape no walk can follow fails before any request, or at the first page when only the page
can tell (a selector that finds nothing), naming the key and the setting; nothing is loaded.
The shapes themselves, each against a fake API of its own: test_api_shapes.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from fulfillment_assets import settings
from fulfillment_assets.demo_api import DemoApiServer
from fulfillment_assets.source import fulfillment_config
from fulfillment_assets.source.pages import FulfillmentPaginator
from fulfillment_assets.source.read_ahead import ReadAheadSession
from fulfillment_assets.source.shape import read_shape
from fulfillment_assets_tests.fake_api import serve_fake_api
from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    TEST_API_KEY,
    failure_message,
    materialize_all,
    query,
)

ENDPOINT = "SOURCES__FULFILLMENT__ENDPOINT"
AUTH = "SOURCES__FULFILLMENT__AUTH"


def test_the_default_shape_is_the_seeds_rest_api_configuration() -> None:
    shape, secret = read_shape(None, None)
    assert secret is None
    session: Any = ReadAheadSession.__new__(ReadAheadSession)
    session.mask = None
    config = fulfillment_config(
        "http://127.0.0.1:1", TEST_API_KEY, session, FulfillmentPaginator(100, 10), shape=shape
    )
    assert config["client"]["auth"] == {
        "type": "api_key",
        "name": "api_key",
        "location": "query",
        "api_key": TEST_API_KEY,
    }
    (resource,) = config["resources"]
    assert isinstance(resource, dict)
    endpoint = resource["endpoint"]
    assert isinstance(endpoint, dict)
    assert endpoint["path"] == settings.ENDPOINT_PATH == "/v1/fulfillment"
    assert str(endpoint["data_selector"]) == "data"
    assert shape.paginator.type == "offset"
    assert shape.paginator.options == {
        "limit": 100,
        "offset": 0,
        "offset_param": "offset",
        "limit_param": "limit",
        "total_path": "total",
    }
    assert config["resource_defaults"] == {"primary_key": "id", "write_disposition": "merge"}


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        (ENDPOINT, {"paginator": {"type": "pages"}}, "endpoint.paginator.type is 'pages'"),
        (
            ENDPOINT,
            {"paginator": {"type": "offset", "offset_parm": "skip"}},
            "endpoint.paginator (type offset) has no key 'offset_parm'",
        ),
        (ENDPOINT, {"paht": "/v2/orders"}, "endpoint has no key 'paht'"),
        (ENDPOINT, {"path": "/orders?page=1"}, "endpoint.path is '/orders?page=1'"),
        (
            ENDPOINT,
            {"params": {"offset": 5}},
            "endpoint.params sets offset, which the paginator sets on each page",
        ),
        (AUTH, {"type": "api_key", "location": "header"}, "location header) has no `name`"),
        (AUTH, {"type": "oauth2"}, "auth.type is 'oauth2'"),
        (
            AUTH,
            {"type": "api_key", "name": "k", "location": "cookie"},
            "which dlt's rest_api does not implement",
        ),
        (AUTH, {"type": "http_basic"}, "auth (type http_basic) has no `username`"),
    ],
    ids=[
        "unknown paginator",
        "unknown paginator key",
        "unknown endpoint key",
        "query in path",
        "params clash",
        "header without name",
        "unknown auth",
        "cookie key",
        "basic without user",
    ],
)
def test_a_bad_shape_is_refused_before_any_request_naming_the_setting(
    setting: str,
    value: dict[str, Any],
    named: str,
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(setting, json.dumps(value))

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    assert not result.success
    message = failure_message(result)
    assert named in message and setting in message, message
    assert demo_api.requests == []


def test_a_selector_that_finds_no_records_fails_at_the_first_page(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENDPOINT, json.dumps({"data_selector": "results"}))

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    assert not result.success
    assert (
        "the page at offset 0 has no `results` field, where endpoint.data_selector says the "
        "records are"
    ) in message and ENDPOINT in message, message
    assert len(demo_api.requests) == 1  # the first page, and no page fetched ahead of it
    assert not query(
        isolated_environment,
        "SELECT table_name FROM information_schema.tables WHERE table_name = %s",
        settings.RESOURCE_NAME,
    )


@pytest.mark.parametrize(
    ("settings_given", "named"),
    [
        (
            {
                ENDPOINT: json.dumps({"paginator": {"type": "json_link"}}),
                "SOURCES__FULFILLMENT__CHUNK_PAGES": "10",
            },
            "the API is walked by json_link",
        ),
        (
            {
                ENDPOINT: json.dumps({"paginator": {"type": "offset", "limit": 50}}),
                "PAGE_LIMIT": "20",
            },
            "page_limit is 20 but endpoint.paginator.limit is 50",
        ),
    ],
    ids=["chunks without offsets", "two page sizes"],
)
def test_contradictory_settings_are_refused_naming_both(
    settings_given: dict[str, str],
    named: str,
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in settings_given.items():
        monkeypatch.setenv(
            name if name.startswith("SOURCES") else f"SOURCES__FULFILLMENT__{name}", value
        )

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    assert not result.success and named in message, message
    assert demo_api.requests == []


def test_an_offset_api_with_other_names_loads_from_configuration_only(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo API's own names spelled out, another page size: the seed's walk, configured."""
    monkeypatch.setenv(
        ENDPOINT,
        json.dumps(
            {
                "path": "/v1/fulfillment",
                "data_selector": "data",
                "paginator": {"type": "offset", "limit": 70, "total_path": "total"},
            }
        ),
    )
    monkeypatch.setenv(
        AUTH, json.dumps({"type": "api_key", "name": "api_key", "location": "query"})
    )

    assert materialize_all(instance, selection=RAW_ONLY).success

    ((rows, ids),) = query(
        isolated_environment, f"SELECT count(*), count(DISTINCT id) FROM {settings.RESOURCE_NAME}"
    )
    assert rows == ids == demo_api.options.records
    assert {request.limit for request in demo_api.requests} == {70}


def test_the_shape_in_force_is_on_the_raw_tables_materialization(
    demo_api: DemoApiServer, instance: DagsterInstance, isolated_environment: Path
) -> None:
    assert materialize_all(instance, selection=RAW_ONLY).success

    from fulfillment_assets.contract import RAW_ASSET_KEY

    event = instance.get_latest_materialization_event(RAW_ASSET_KEY)
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    shape = metadata["api_shape"].value
    assert shape == {
        "path": "/v1/fulfillment",
        "data_selector": "data",
        "params": {},
        "paginator": {
            "type": "offset",
            "limit": 100,
            "offset": 0,
            "offset_param": "offset",
            "limit_param": "limit",
            "total_path": "total",
        },
        "auth": "api_key in the query as `api_key`",
        "walk": "read ahead: the next pages are known in advance and fetched concurrently",
    }
    assert TEST_API_KEY not in json.dumps(shape)
    assert str(metadata["walk_fetch"].value).startswith("read ahead")


class LinkingApi:
    """Records under `data`, the next page named by `next`: the one it is given for each page."""

    def __init__(self, links: dict[str | None, str | None]) -> None:
        self.links = links  # the `after` a request carries -> the link its page names

    def page(self, offset: int, limit: int, params: dict[str, str]) -> dict[str, Any]:
        after = params.get("after")
        start = int(after or 0)
        return {
            "data": [{"id": i} for i in range(start + 1, start + 51)],
            "next": self.links.get(after),
        }


@pytest.mark.parametrize(
    ("links", "named"),
    [
        (
            {None: "/v1/fulfillment?after=50", "50": "/v1/fulfillment?after=50"},
            "names a next page the walk already fetched: its pages loop",
        ),
        (
            {None: "http://elsewhere.invalid/v1/fulfillment?after=50"},
            "links its next page on another host (http://elsewhere.invalid); the walk does not "
            "follow it, so the API key is not sent there",
        ),
    ],
    ids=["a loop", "another host"],
)
def test_a_next_link_that_loops_or_leaves_the_host_fails_and_loads_nothing(
    links: dict[str | None, str | None],
    named: str,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENDPOINT, json.dumps({"paginator": {"type": "json_link"}}))
    with serve_fake_api(LinkingApi(links), monkeypatch):
        result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    assert not result.success and named in message, message
    assert not query(
        isolated_environment,
        "SELECT table_name FROM information_schema.tables WHERE table_name = %s",
        settings.RESOURCE_NAME,
    )


def test_a_key_put_in_the_endpoints_params_is_masked_on_the_raw_tables_page(
    demo_api: DemoApiServer,
    instance: DagsterInstance,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Some APIs want a second credential as a plain parameter: it travels, but is never shown."""
    monkeypatch.setenv(ENDPOINT, json.dumps({"params": {"access_token": TEST_API_KEY}}))

    result = materialize_all(instance, selection=RAW_ONLY)

    (event,) = result.get_asset_materialization_events()
    shape = event.materialization.metadata["api_shape"].value
    assert isinstance(shape, dict) and shape["params"] == {"access_token": "***"}, shape
