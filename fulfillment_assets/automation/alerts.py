"""Alert delivery without Dagster+: a Slack-compatible webhook POST, retried, never raising,
never carrying the API key.

`FULFILLMENT_ALERT_WEBHOOK_URL` is where messages go (unset: no alerts); any endpoint that takes
Slack's incoming-webhook body `{"text": ...}` works (Slack, Mattermost, Rocket.Chat, a relay).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request

from fulfillment_assets import settings
from fulfillment_assets.masking import KeyMask

ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0
# Slack shows about this many characters of a message before folding it.
MAX_TEXT = 3000


def post_alert(url: str, text: str, log: logging.Logger) -> bool:
    """POST `{"text": text}` to the webhook, a few attempts; False (and logged) if none got
    through. Never raises: a webhook that is down must not break what reports to it."""
    mask = KeyMask.configured()
    text = mask(text)
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    body = json.dumps({"text": text}).encode()
    base = settings.alert_retry_seconds()
    # The webhook URL itself is a credential (Slack's carries its token): log only its host.
    where = urllib.parse.urlsplit(url).netloc or "the webhook"
    for attempt in range(1, ATTEMPTS + 1):
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                response.read()
            return True
        except (OSError, ValueError) as problem:  # URLError, HTTPError, timeouts, a bad URL
            reason = mask(str(getattr(problem, "reason", problem)))
            log.warning(f"alert to {where} failed (attempt {attempt} of {ATTEMPTS}): {reason}")
        if attempt < ATTEMPTS:
            time.sleep(base * 2 ** (attempt - 1))
    log.error(f"alert not delivered to {where} after {ATTEMPTS} attempts: {text.splitlines()[0]}")
    return False
