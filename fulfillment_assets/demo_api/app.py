"""The demo fulfillment API as a Starlette app, with runtime-switchable faults."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import deque
from typing import Any, NamedTuple

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fulfillment_assets.demo_api.changes import parse_since
from fulfillment_assets.demo_api.data import Dataset
from fulfillment_assets.demo_api.faults import (
    JSON,
    DripResponse,
    DroppedResponse,
    hang,
    json_response,
    malformed_response,
    retry_after_header,
)
from fulfillment_assets.demo_api.options import (
    DemoApiOptions,
)

REQUEST_LOG_MAXLEN = 100_000
_HEALTHY = b'{"ok":true}'


class RequestRecord(NamedTuple):
    """One /v1/fulfillment request; offset/limit as sent (None if invalid, limit uncapped)."""

    offset: int | None
    limit: int | None
    status: int
    at: float
    # The updated_since value as sent (None when absent or the API does not filter).
    updated_since: str | None = None


class _Live(NamedTuple):
    # Swapped as one object so a request never sees half-applied options.
    options: DemoApiOptions
    dataset: Dataset
    fail_counts: dict[int, int]


class DemoApiState:
    """The mutable side of a running app: current options and the request log."""

    def __init__(self, options: DemoApiOptions) -> None:
        self.live = _Live(options, Dataset(options), {})
        self._log: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_MAXLEN)
        self._lock = threading.Lock()
        # Requests being answered now, and the most at once since the log was cleared.
        self.in_flight = 0
        self.max_in_flight = 0
        # Set by the server on stop so hanging requests end instead of blocking shutdown.
        self.closing = False

    @property
    def options(self) -> DemoApiOptions:
        return self.live.options

    def configure(self, options: DemoApiOptions | None = None, /, **changes: Any) -> DemoApiOptions:
        """Apply `changes` to `options` (default: current ones); resets failure counters."""
        options = dataclasses.replace(options or self.live.options, **changes)
        self.live = _Live(options, Dataset(options), {})
        return options

    def log(
        self, offset: int | None, limit: int | None, status: int, since: str | None = None
    ) -> None:
        with self._lock:
            self._log.append(RequestRecord(offset, limit, status, time.monotonic(), since))

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()
        self.max_in_flight = 0


def _int_param(raw: str | None, default: int) -> int | None:
    if raw is None:
        return default
    # isdigit rejects signs, spaces and "1_000" that int() would accept; the length cap
    # keeps int() away from its huge-string error.
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def build_app(options: DemoApiOptions | None = None) -> Starlette:
    """The Starlette app; its DemoApiState is at `app.state.demo_api`."""
    state = DemoApiState(options or DemoApiOptions())

    async def fulfillment(request: Request) -> Response:
        # One event loop, so plain counters are safe: how many pages a client fetches at once.
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            return await serve_page(request)
        finally:
            state.in_flight -= 1

    async def serve_page(request: Request) -> Response:
        live = state.live
        opts = live.options
        if opts.latency_ms:
            await asyncio.sleep(opts.latency_ms / 1000)
        params = request.query_params
        # Logged even when this API ignores it (the seed's API): tests see what clients send.
        sent = params.get(opts.updated_since_param or "updated_since")
        offset = _int_param(params.get("offset"), 0)
        limit = _int_param(params.get("limit"), 100)
        if params.get("api_key") != opts.api_key:
            state.log(offset, limit, 401, sent)
            sent = params.get("api_key") if opts.echo_key else None
            error = f"invalid or expired API key: {sent}" if sent else "invalid or missing api_key"
            return json_response(401, {"error": error})
        if opts.forbidden:
            state.log(offset, limit, 403, sent)
            return json_response(403, {"error": "forbidden"})
        if offset is None or limit is None:
            state.log(offset, limit, 400, sent)
            return json_response(400, {"error": "offset and limit must be non-negative integers"})
        if offset == opts.hang_offset:
            await hang(request.receive, opts.hang_seconds, state)
        if opts.fail_status is not None and (
            opts.fail_offsets is None or offset in opts.fail_offsets
        ):
            failed = live.fail_counts.get(offset, 0)
            if opts.fail_times is None or failed < opts.fail_times:
                live.fail_counts[offset] = failed + 1
                headers = None
                if opts.retry_after is not None and opts.fail_status in (429, 503):
                    headers = {"Retry-After": retry_after_header(opts.retry_after)}
                state.log(offset, limit, opts.fail_status, sent)
                error = f"injected fault, key {opts.api_key}" if opts.echo_key else "injected fault"
                return json_response(opts.fail_status, {"error": error}, headers)

        ds = live.dataset
        page_limit = min(limit, opts.max_limit)
        raw_since = sent if opts.updated_since_param else None
        since = None if raw_since is None else parse_since(raw_since)
        if raw_since is not None and since is None:
            state.log(offset, limit, 400, sent)
            error = f"{opts.updated_since_param} must be an ISO-8601 timestamp"
            return json_response(400, {"error": error})
        payload: dict[str, Any] = {"data": ds.page(offset, page_limit, since)}
        if opts.include_total and not opts.endless:
            grows = opts.malformed == "total_changes" and offset >= opts.malformed_offset
            total = ds.served_total(since)
            payload["total"] = total + 50 if grows else total
            if opts.reported_total is not None:
                payload["total"] = opts.reported_total
        payload["offset"] = offset
        payload["limit"] = page_limit
        state.log(offset, limit, 200, sent)
        if offset == opts.drip_offset:
            return DripResponse(orjson.dumps(payload), state)
        if offset == opts.drop_connection_offset:
            return DroppedResponse(orjson.dumps(payload))
        if opts.malformed is not None and offset == opts.malformed_offset:
            return malformed_response(opts.malformed, payload, ds, offset)
        return Response(orjson.dumps(payload), media_type=JSON)

    async def healthz(request: Request) -> Response:
        return Response(_HEALTHY, media_type=JSON)

    async def http_error(request: Request, exc: Exception) -> Response:
        # Covers 404 for unknown paths and 405; never echoes the URL (it may hold the key).
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = {404: "not found", 405: "method not allowed"}.get(status, "request failed")
        return json_response(status, {"error": message})

    app = Starlette(
        routes=[
            Route("/v1/fulfillment", fulfillment, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.demo_api = state
    return app
