"""The demo API's fault responses: dropped, dripping, hanging, malformed, and JSON errors."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from typing import Any, Protocol

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from fulfillment_assets.demo_api.data import Dataset

JSON = "application/json"


class Stopping(Protocol):
    """The server's state as a fault sees it: whether the server is stopping."""

    closing: bool


class DroppedResponse(Response):
    """Starts a chunked 200 and stops mid-body; uvicorn then closes the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", JSON.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = {"type": "http.response.body", "body": self.body[: len(self.body) // 2]}
        await send({**body, "more_body": True})
        # Returning without the final chunk is the drop (uvicorn logs one error line).


DRIP_INTERVAL = 0.2


class DripResponse(Response):
    """A 200 whose body arrives 4 bytes every DRIP_INTERVAL seconds: each wait is short, the page
    takes minutes. Stops when the server stops."""

    def __init__(self, body: bytes, state: Stopping) -> None:
        super().__init__(body, media_type=JSON)
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        for start in range(0, len(self.body), 4):
            if self._state.closing:
                return
            chunk = {"type": "http.response.body", "body": self.body[start : start + 4]}
            await send({**chunk, "more_body": True})
            await asyncio.sleep(DRIP_INTERVAL)
        await send({"type": "http.response.body", "body": b""})


HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON, headers=headers)


def retry_after_header(value: str) -> str:
    """The header as configured; `date+N` is an HTTP-date N seconds after this answer."""
    if value.startswith("date+"):
        return formatdate(time.time() + float(value.removeprefix("date+")), usegmt=True)
    return value


async def hang(receive: Receive, seconds: float, state: Stopping) -> None:
    """Sleep `seconds`, but stop early if the client leaves or the server is stopping."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    # Without the early exits, shutdown would wait out (or cancel noisily) every hang.
    waiter = asyncio.ensure_future(disconnected())
    deadline = time.monotonic() + seconds
    try:
        while not waiter.done() and not state.closing and time.monotonic() < deadline:
            await asyncio.wait({waiter}, timeout=min(0.1, deadline - time.monotonic()))
    finally:
        waiter.cancel()


def malformed_response(kind: str, payload: dict[str, Any], ds: Dataset, offset: int) -> Response:
    if kind == "html":
        return Response(HTML_ERROR_PAGE, media_type="text/html")
    if kind == "empty_body":
        return Response(b"", media_type=JSON)
    if kind == "truncated":
        body = orjson.dumps(payload)
        return Response(body[: len(body) // 2], media_type=JSON)
    data = payload["data"]
    if kind == "no_data":
        del payload["data"]
    elif kind == "data_not_list":
        payload["data"] = {"records": data}
    elif kind == "record_not_object":
        data[:1] = ["not a record"]
    elif kind == "record_without_id":
        if not data:
            data.append(ds.record(offset + 1))
        del data[0]["id"]
    elif kind == "total_not_number":
        payload["total"] = "many"
    return json_response(200, payload)
