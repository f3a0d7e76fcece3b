"""The fulfillment API as a dlt source: the seed's rest_api configuration plus a thin function.

The configuration below is the seed's (api_key in the query, `/v1/fulfillment`, `data`, offset
pages of 100, pk `id`, merge), with this project's parts plugged in through rest_api's public
parameters; each lives in a module of its own:
- `shape`: the API's shape (path, records, auth, paginator) from the `endpoint` and `auth`
  settings in rest_api's own keys, the seed's by default;
- `http`: dlt's retrying client with the seed's policy, errors without the key; `api_message`:
  the API's own words from an error envelope, masked and bounded;
- `transport` and `deadline`: a whole page (connection, headers, body) within the request
  timeout, parsed once; `pacing`: the waits a rate limit announces, and slowing down before it;
- `pages`: the page check and the offset paginator (advance by the records received, end on an
  empty page, the count must equal a `total` that stands still); `paginators`: the walks by page
  number, next link and cursor, with the same promises where they apply;
- `completeness`: whether the walk received every record of a listing that may move under it,
  and so whether it is walked again; `chunks`: a full walk in chunks, each its own load;
- `incremental`: dlt's cursor on the Arrow batches, and the `last_run` each walk reports;
- `read_ahead`: a `requests.Session` that fetches the next pages concurrently, in order, on
  `workers`' daemon threads;
- `arrow`: records to typed Arrow tables with variant columns, `values` reading a value sent in
  another form as its column's type where that is safe; `json_text`: dlt's warning that their
  JSON columns are JSON text, dropped;
- `progress`: the walk's progress on the `fulfillment_assets.progress` logger;
- `collector`: Python's garbage collector, run less often during the walk.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from functools import partial
from typing import Any, cast

import dlt
import pyarrow as pa
from dlt.common import jsonpath
from dlt.common.configuration.utils import get_resolved_traces
from dlt.common.schema.typing import TColumnSchema, TDataType
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources

from fulfillment_assets import settings
from fulfillment_assets.masking import KeyMask
from fulfillment_assets.source.arrow import (
    ID_TYPE_SETTING,
    ColumnTypes,
    arrow_batches,
    is_project_column,
    page_to_arrow,
)
from fulfillment_assets.source.chunks import (
    CHUNK_SECONDS_SETTING,
    ChunkBudget,
    WalkPosition,
    WalkTracker,
)
from fulfillment_assets.source.collector import fewer_collections
from fulfillment_assets.source.completeness import TAIL_CHASE_PAGES_SETTING, WalkLedger
from fulfillment_assets.source.http import (
    API_KEY_SETTING,
    BASE_URL_SETTING,
    FulfillmentApiError,
    FulfillmentHttpError,
    FulfillmentPageError,
    check_base_url,
    raise_for_status,
    retrying_client,
)
from fulfillment_assets.source.incremental import fulfillment_resource
from fulfillment_assets.source.json_text import drop_json_text_warning
from fulfillment_assets.source.pages import FulfillmentPaginator, check_page
from fulfillment_assets.source.paginators import reference_walk
from fulfillment_assets.source.read_ahead import ReadAheadSession
from fulfillment_assets.source.shape import ENDPOINT_SETTING, ApiShape, read_shape
from fulfillment_assets.source.transport import PageDeadlineAdapter
from fulfillment_assets.source.values import api_zone

__all__ = [
    "API_KEY_SETTING",
    "BASE_URL_SETTING",
    "FulfillmentApiError",
    "FulfillmentHttpError",
    "FulfillmentPageError",
    "arrow_batches",
    "check_base_url",
    "describe_fulfillment",
    "fulfillment",
    "fulfillment_config",
    "page_to_arrow",
]

logger = logging.getLogger(__name__)


def fulfillment_config(
    base_url: str,
    api_key: str,
    session: ReadAheadSession,
    paginator: BasePaginator,
    params: dict[str, str] | None = None,
    backoff_factor: float = settings.BACKOFF_FACTOR,
    max_retry_wait: float = settings.MAX_RETRY_WAIT_SECONDS,
    id_type: str | None = None,
    text_without_nul: bool = False,
    shape: ApiShape | None = None,
) -> RESTAPIConfig:
    """The seed's rest_api configuration in the API's `shape` (the seed's by default), with this
    project's session, paginator and hints; `api_key` is the shape's secret."""
    mask = session.mask
    shape = shape or read_shape(None, None)[0]
    id_hints: TColumnSchema = {**settings.CONTRACT_COLUMNS["id"]}
    if id_type:  # else the raw table's type, or the first load's (ColumnTypes in arrow.py)
        id_hints["data_type"] = cast(TDataType, id_type)
    return {
        "client": {
            "base_url": base_url,
            "auth": cast(Any, shape.auth.rest_api(api_key)),
            "session": session,
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {
                "name": settings.RESOURCE_NAME,
                "endpoint": {
                    "path": shape.path,
                    "params": {**shape.params, **(params or {})},
                    # Compiled once: dlt would parse the JSONPath again for every page (~3 ms).
                    "data_selector": _compiled(shape.records.path),
                    "paginator": paginator,
                    "response_actions": [
                        partial(
                            raise_for_status,
                            mask=mask,
                            on_rate_limit=session.throttle,
                            backoff_factor=backoff_factor,
                            max_retry_wait=max_retry_wait,
                            where=shape.where,
                            path=shape.path,
                        ),
                        partial(
                            check_page, mask=mask, shape=shape, text_without_nul=text_without_nul
                        ),
                    ],
                },
                "columns": {
                    **settings.CONTRACT_COLUMNS,
                    "id": id_hints,
                    **settings.DOCUMENTED_COLUMNS,
                    # The newest version of a record wins when one load sees an id twice.
                    "updated_at": {
                        **settings.DOCUMENTED_COLUMNS["updated_at"],
                        "dedup_sort": "desc",
                    },
                },
                # Nested objects stay JSON columns, the same whether a page loads as Arrow or rows.
                "max_table_nesting": 0,
            }
        ],
    }


@functools.cache
def _compiled(path: str) -> Any:
    return jsonpath.compile_path(path)


def _refuse_empty_key(api_key: str | None) -> str:
    """The key, refused before any request when empty or unset."""
    if not api_key or not api_key.strip():
        raise FulfillmentApiError(
            f"the API key is empty: set {API_KEY_SETTING} (or the secret part of the auth "
            "setting: token for bearer, password for http_basic)"
        )
    return api_key


def _refuse_bad_settings(**whole_numbers: int) -> None:
    """Settings no walk can work with are refused before any request, naming the setting."""
    for name, value in whole_numbers.items():
        if type(value) is not int or value < 1:
            raise FulfillmentApiError(
                f"{name} is {value!r}, expected a whole number of at least 1: set "
                f"SOURCES__FULFILLMENT__{name.upper()} (or {name} under [sources.fulfillment] "
                "in .dlt/config.toml)"
            )


def _mask_resolved_base_url(mask: KeyMask) -> None:
    """dlt records resolved config values for the run's `trace.pickle`; `base_url` is no secret
    to dlt (it may live in config.toml), but credentials in it are: the recorded value is masked."""
    traces = get_resolved_traces().resolved_traces
    for position, trace in enumerate(traces):
        if trace.key == "base_url" and isinstance(trace.value, str):
            traces[position] = trace._replace(value=mask(trace.value))


@dlt.source(name=settings.SOURCE_NAME, section=settings.SOURCE_NAME)
def fulfillment(
    base_url: str = dlt.config.value,
    api_key: str | None = dlt.secrets.value,
    page_limit: int = settings.PAGE_LIMIT,
    max_records: int = settings.MAX_RECORDS,
    page_concurrency: int = settings.PAGE_CONCURRENCY,
    request_timeout: float = settings.REQUEST_TIMEOUT_SECONDS,
    backoff_factor: float = settings.BACKOFF_FACTOR,
    max_retry_wait: float = settings.MAX_RETRY_WAIT_SECONDS,
    allow_insecure_http: bool = False,
    arrow_batch_rows: int = settings.ARROW_BATCH_ROWS,
    updated_since_param: str | None = None,
    cursor_field: str = "updated_at",
    lookback_seconds: int = 3600,
    full_refresh: bool = False,
    api_timezone: str = "UTC",
    max_walk_passes: int = settings.MAX_WALK_PASSES,
    tail_chase_pages: int = settings.TAIL_CHASE_PAGES,
    id_type: str | None = None,
    chunk_pages: int = settings.CHUNK_PAGES,
    chunk_seconds: float = settings.CHUNK_SECONDS,
    text_without_nul: bool = False,
    walk_resume: dict[str, Any] | None = None,
    endpoint: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
) -> list[DltResource]:
    """Fulfillment records from `GET {base_url}/v1/fulfillment` (or the `endpoint` setting's
    path), one resource: fulfillment_data.

    `endpoint` and `auth` describe the API in rest_api's own keys (`shape.py`). A full walk by
    offset yields one chunk (`chunks.py`); `walk_resume` (a `WalkPosition` as the destination
    keeps it, plus `seen_ids`: every id the walk received) continues an unfinished one."""
    _refuse_bad_settings(
        page_limit=page_limit,
        page_concurrency=page_concurrency,
        max_walk_passes=max_walk_passes,
        chunk_pages=chunk_pages,
    )
    shape, auth_secret = read_shape(endpoint, auth, page_limit)
    # Both masked: the auth table's own secret, used when set, and the key setting.
    api_key, key_setting = auth_secret or api_key, api_key
    mask = KeyMask(
        api_key or "",
        base_url,
        others=(key_setting or "", *shape.auth.secret_forms(api_key or "")),
    )
    _mask_resolved_base_url(mask)
    api_key = _refuse_empty_key(api_key)
    base_url = check_base_url(base_url, allow_insecure_http)
    if not chunk_seconds > 0:
        raise FulfillmentApiError(
            f"chunk_seconds is {chunk_seconds!r}, expected a number of seconds above 0: set "
            f"{CHUNK_SECONDS_SETTING}"
        )
    if type(tail_chase_pages) is not int or tail_chase_pages < 0:
        raise FulfillmentApiError(
            f"tail_chase_pages is {tail_chase_pages!r}, expected a whole number of at least 0 "
            f"(0: only an empty page ends a walk without total): set {TAIL_CHASE_PAGES_SETTING}"
        )
    if id_type is not None and id_type not in settings.ID_TYPES:
        raise FulfillmentApiError(
            f"id_type is {id_type!r}, expected one of {', '.join(settings.ID_TYPES)} (or unset, "
            f"to take the raw table's or learn it from the first load): set {ID_TYPE_SETTING}"
        )
    try:
        zone = api_zone(api_timezone)
    except ValueError as bad_zone:
        raise FulfillmentApiError(str(bad_zone)) from None
    by_offset = shape.paginator.type == "offset"
    _refuse_contradictions(shape, page_limit, chunk_pages, chunk_seconds)
    if walk_resume is not None and not by_offset:
        logger.warning(
            "an unfinished walk by offset is in the destination, but the API is now walked by "
            "%s: it starts afresh",
            shape.paginator.type,
        )
        walk_resume = None
    session = ReadAheadSession(
        retrying_client(request_timeout, backoff_factor),
        PageDeadlineAdapter(
            request_timeout,
            pool_maxsize=page_concurrency + 2,
            max_retry_wait=max_retry_wait,
            backoff_factor=backoff_factor,
            where=shape.where,
        ),
        mask,
        page_concurrency,
        shape=shape,
    )
    ledger = WalkLedger()
    paginator: Any = (
        FulfillmentPaginator(
            int(shape.paginator.options["limit"]),
            max_records,
            ledger=ledger,
            shape=shape,
            tail_chase_pages=tail_chase_pages,
        )
        if by_offset
        else reference_walk(shape, max_records, ledger)
    )
    first_position = int(shape.paginator.options.get("offset", 0))
    # fulfillment_config's settings besides the walk's own parts.
    options: dict[str, Any] = {
        "backoff_factor": backoff_factor,
        "max_retry_wait": max_retry_wait,
        "id_type": id_type,
        "text_without_nul": text_without_nul,
        "shape": shape,
    }
    config = fulfillment_config(base_url, api_key, session, paginator, None, **options)
    # The same table hints as the rest_api resource: the seed's defaults plus its own.
    (resource_config,) = config["resources"]
    assert isinstance(resource_config, dict)  # fulfillment_config's one resource is a dict
    # dlt.resource's keyword arguments, each of its own type.
    hints: dict[str, Any] = {
        **(config["resource_defaults"] or {}),
        **{k: v for k, v in resource_config.items() if k != "endpoint"},
    }

    tracker = WalkTracker()

    def every_pass(params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """The walk's records, pass after pass until the ledger finds it complete: a listing
        that moved under the offsets is walked again (`completeness.py`), and a later pass
        yields only the records no earlier pass received. A full walk (no "updated since"
        parameter) yields one chunk of it and says where it stands (`tracker.position`)."""
        walk, first_pass, go_on = _start_or_resume(ledger, walk_resume if not params else None)
        # Only a walk by offset is chunked: where another would resume is a link or cursor the
        # API may no longer honour.
        budget = ChunkBudget(chunk_pages, chunk_seconds) if not params and by_offset else None
        paginator.budget = budget
        tracker.position = None if params else walk
        pages_before, paginator.pages_received = walk.pages, 0
        for number in range(first_pass, max_walk_passes + 1):
            if go_on and number == first_pass:
                start = max(walk.offset - walk.overlap, 0)
                paginator.start_at(start, walk.paginator, overlap=start < walk.offset)
            else:
                ledger.start_pass()
                paginator.start_at(first_position)
            if budget is not None:
                # Nothing fetched ahead past the chunk: the next chunk asks for those pages.
                left = budget.pages - budget.used
                session.fetch_limit = paginator.initial_value + left * page_limit
            # Built per walk: the incremental cursor decides the params when the resource runs.
            (pages,) = rest_api_resources(
                fulfillment_config(base_url, api_key, session, paginator, params, **options)
            )
            yield from pages if number == 1 else filter(ledger.is_new, pages)
            walk.pass_number = number
            walk.pages = pages_before + paginator.pages_received
            walk.records = len(ledger.ids)
            if paginator.chunk_ended:
                walk.offset, walk.overlap = paginator.current_value, paginator.last_received
                walk.paginator, walk.ledger = paginator.snapshot(), ledger.snapshot()
                walk.chunks += 1
                return
            verdict = ledger.verdict()
            if not verdict.worth_another_pass or number == max_walk_passes:
                walk.offset, walk.overlap, walk.done = paginator.current_value, 0, True
                walk.ledger, walk.chunks = ledger.snapshot(), walk.chunks + 1
                return
            logger.warning(
                "pass %d of at most %d: %s; walking the listing again",
                number,
                max_walk_passes,
                verdict.explain(),
            )

    def fulfillment_batches(params: dict[str, str]) -> Iterator[pa.Table | dict]:
        try:
            with fewer_collections():
                if arrow_batch_rows:
                    drop_json_text_warning()
                    types = ColumnTypes(_stored_types(), zone, id_type)
                    yield from arrow_batches(every_pass(params), arrow_batch_rows, types)
                    _record_values_read(types)
                else:
                    yield from every_pass(params)
                _record_api_shape(shape, mask)
        finally:
            session.close()  # a failed page leaves no fetches running behind it

    return [
        fulfillment_resource(
            fulfillment_batches,
            hints,
            updated_since_param=updated_since_param or None,
            cursor_field=cursor_field,
            lookback_seconds=lookback_seconds,
            full_refresh=full_refresh,
            api_timezone=zone,
            ledger=ledger,
            tracker=tracker,
            resuming=walk_resume is not None,
        )
    ]


def _start_or_resume(
    ledger: WalkLedger, walk_resume: dict[str, Any] | None
) -> tuple[WalkPosition, int, bool]:
    """The walk this chunk belongs to, the pass it starts with, and whether that pass goes on
    where it stood (a resumed first pass) rather than from offset 0.

    A later pass resumed starts again: its earlier passes are every id the walk received, and
    the ids it had yielded are among them (`WalkLedger.restore`)."""
    if walk_resume is None:
        ledger.start_walk()
        return WalkPosition.start(), 1, False
    walk = WalkPosition.from_dict(walk_resume)
    seen_ids = walk_resume.get("seen_ids") or ()
    go_on = walk.pass_number == 1 and walk.offset > 0
    passes_before = walk.pass_number if go_on else walk.pass_number - 1
    ledger.restore({**walk.ledger, "passes": passes_before}, seen_ids)
    return walk, walk.pass_number, go_on


VALUES_READ_AS_TYPE = "values_read_as_type"


def _stored_types() -> dict[str, str]:
    """The raw table's column types as the destination holds them (dlt restores the stored
    schema before it extracts), for the fields the seed does not declare; {} on a first load."""
    try:
        schema = dlt.current.source_schema()
    except Exception:  # iterated outside a pipeline (a test, a notebook): nothing stored
        return {}
    columns = schema.tables.get(settings.RESOURCE_NAME, {}).get("columns", {})
    return {
        name: str(column["data_type"])
        for name, column in columns.items()
        if column.get("data_type") and "__v_" not in name and not is_project_column(name)
    }


def _record_values_read(types: ColumnTypes) -> None:
    """The walk's count of values read as their column's type from another form, per column,
    in the resource's state for the run's metadata (`values_read_as_type`)."""
    with contextlib.suppress(Exception):  # outside a pipeline: nothing to record it in
        dlt.current.resource_state()[VALUES_READ_AS_TYPE] = dict(types.coerced)


API_SHAPE = "api_shape"


def _record_api_shape(shape: ApiShape, mask: KeyMask) -> None:
    """The shape the walk used, in the resource's state for the run's metadata: it holds no
    secret, and a key the user put in `endpoint.params` is masked like everywhere else."""
    described = shape.describe()
    described["params"] = {name: mask(value) for name, value in described["params"].items()}
    with contextlib.suppress(Exception):  # outside a pipeline: nothing to record it in
        dlt.current.resource_state()[API_SHAPE] = described


def _refuse_contradictions(
    shape: ApiShape, page_limit: int, chunk_pages: int, chunk_seconds: float
) -> None:
    """Settings that say two things at once, or ask what the shape cannot do, named."""
    limit = shape.paginator.options.get("limit")
    if limit is not None and page_limit != settings.PAGE_LIMIT and limit != page_limit:
        raise FulfillmentApiError(
            f"page_limit is {page_limit} but endpoint.paginator.limit is {limit}: set one, "
            f"SOURCES__FULFILLMENT__PAGE_LIMIT or {ENDPOINT_SETTING}"
        )
    chunked = chunk_pages != settings.CHUNK_PAGES or chunk_seconds != settings.CHUNK_SECONDS
    if chunked and shape.paginator.type != "offset":
        raise FulfillmentApiError(
            f"chunk_pages / chunk_seconds commit a walk in chunks that a later run resumes at "
            f"an offset; the API is walked by {shape.paginator.type} (its next page is named "
            f"by the page before), which cannot resume: unset "
            f"SOURCES__FULFILLMENT__CHUNK_PAGES and {CHUNK_SECONDS_SETTING}, or walk by offset "
            f"in {ENDPOINT_SETTING}"
        )


def describe_fulfillment() -> DltSource:
    """The source as Dagster reads it when a code location loads: names and hints only.

    No request is made and no secret is read; each run builds the source from configuration.
    """
    # Every setting the source checks is the default here, the shape the seed's: a setting the
    # configuration gets wrong fails the run that reads it (naming the setting), not the code
    # location's load.
    return fulfillment(
        base_url="https://fulfillment.invalid",
        api_key="resolved-at-run-time",
        page_limit=settings.PAGE_LIMIT,
        page_concurrency=settings.PAGE_CONCURRENCY,
        max_walk_passes=settings.MAX_WALK_PASSES,
        tail_chase_pages=settings.TAIL_CHASE_PAGES,
        id_type=None,
        chunk_pages=settings.CHUNK_PAGES,
        chunk_seconds=settings.CHUNK_SECONDS,
        api_timezone="UTC",
        endpoint=None,
        auth=None,
    )
