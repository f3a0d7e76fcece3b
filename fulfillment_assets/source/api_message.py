"""The API's own words: the message of an error envelope, masked, bounded, control chars escaped.

Envelopes read: `{"errors": [{"message": ...}, ...]}` (GraphQL-style, also beside `"data": null`),
`{"errors": ["..."]}`, `{"error": "..."}`, `{"error": {"message": ...}}`, `{"message": "..."}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from fulfillment_assets.display import escaped

MESSAGE_CHARS = 200


def _texts(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    found: list[str] = []
    errors = body.get("errors")
    if isinstance(errors, list):
        for error in errors[:5]:
            if isinstance(error, str):
                found.append(error)
            elif isinstance(error, dict) and isinstance(error.get("message"), str):
                found.append(error["message"])
    error = body.get("error")
    if isinstance(error, str):
        found.append(error)
    elif isinstance(error, dict) and isinstance(error.get("message"), str):
        found.append(error["message"])
    if isinstance(body.get("message"), str):
        found.append(body["message"])
    return [text for text in found if text.strip()]


def api_message(body: Any, mask: Callable[[str], str]) -> str | None:
    """The envelope's message text, masked, escaped and cut to ~200 characters; None if none."""
    if isinstance(body, bytes | str):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    texts = _texts(body)
    if not texts:
        return None
    text = escaped(mask("; ".join(texts)))
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS].rsplit(" ", 1)[0] + "..."
    return text


def the_api_says(body: Any, mask: Callable[[str], str]) -> str:
    """`; the API says: '...'`, or nothing when the body carries no message."""
    message = api_message(body, mask)
    return f"; the API says: '{message}'" if message else ""
