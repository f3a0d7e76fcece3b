"""The one masker of secrets in text the project writes: errors, log lines, alerts, traces.

`KeyMask` knows the API key in every form the project meets it (raw, URL-encoded, `api_key=` in a
URL, credentials in `base_url`) and the usual names of credentials in `name=value` / `name: value`
form (`token`, `secret`, `password`, `authorization`, ...). The source masks with the key it was
given; the alerts with the key configured for the source (`KeyMask.configured()`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

import dlt

_SECRET_IN_URL = re.compile(r"(api_key=)[^&\s'\"#]*", re.IGNORECASE)
_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^/@\s'\"]+@")
# The usual names of credentials, their values never leave the machine.
_CREDENTIAL = re.compile(
    r"(?i)\b(api[_-]?key|access[_-]?token|token|secret|password|authorization)"
    r"(\"?\s*[=:]\s*\"?)(?:bearer\s+)?[^\s&\"',;)]+"
)


class KeyMask:
    """Masks the API key in any form: raw, URL-encoded, `api_key=...`, `user:pw@` in URLs, and
    values of credential-named fields."""

    def __init__(self, api_key: str = "", base_url: str = "", others: tuple[str, ...] = ()) -> None:
        """`others`: more secrets, masked the same way (an auth table's own, beside the key)."""
        forms: set[str] = set()
        for secret in (api_key, *others):
            forms |= {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
        credentials = urlsplit(base_url).netloc.rpartition("@")[0] if "@" in base_url else ""
        for secret in (credentials, *credentials.split(":", 1)):
            forms |= {secret, unquote(secret)}
        # Longest first, so a key that contains another form is masked whole.
        self._forms = sorted((form for form in forms if len(form) >= 3), key=len, reverse=True)

    @classmethod
    def configured(cls) -> KeyMask:
        """The mask of the API key configured for the source (environment or dlt's secrets),
        for text written outside a run of the source (alerts)."""
        try:
            # dlt's resolution: SOURCES__FULFILLMENT__API_KEY, then .dlt/secrets.toml.
            key = str(dlt.secrets.get("sources.fulfillment.api_key") or "")
        except Exception:  # no secrets file or no key: the patterns still mask
            key = ""
        try:
            # The auth table's own secret (source/shape.py), when it holds one.
            auth: Any = dlt.secrets.get("sources.fulfillment.auth")
            own = auth.get("api_key") or auth.get("token") or auth.get("password")
            others = (str(own),) if own and len(str(own)) >= 4 else ()
        except Exception:  # none set, or not a table: the key alone
            others = ()
        return cls(key if len(key) >= 4 else "", others=others)

    def __call__(self, text: str) -> str:
        text = _CREDENTIALS_IN_URL.sub("***@", _SECRET_IN_URL.sub(r"\1***", text))
        for form in self._forms:
            text = text.replace(form, "***")
        return _CREDENTIAL.sub(lambda match: f"{match.group(1)}{match.group(2)}***", text)
