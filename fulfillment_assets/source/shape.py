"""The API's shape, read from configuration in rest_api's own words: where the records are, how
the key travels, how pages follow each other.

Two settings of the source, each a table of rest_api's keys (dlt reads a table from
`.dlt/config.toml` / `secrets.toml` under `[sources.fulfillment]`, or an environment variable
holding JSON):
- `auth`: rest_api's `client.auth` (`type` `api_key` with `name` and `location` query or header,
  `bearer`, `http_basic` with `username`). The secret part (`api_key`, `token`,
  `password`) comes from secrets: the table's own key when it holds one (secrets.toml), else
  `api_key`, the setting every kind shares;
- `endpoint`: rest_api's `endpoint` keys `path`, `data_selector`, `params` and `paginator`
  (`offset`, `page_number`, `json_link`, `header_link`, `cursor`, with their own keys).

Unset, both are the seed's: `api_key` in the query, `/v1/fulfillment`, `data`, offset pages of
`page_limit` with `total`. A shape no walk can follow is refused before any request, naming the
key and the setting.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dlt.common import jsonpath

from fulfillment_assets import settings
from fulfillment_assets.source.http import FulfillmentApiError

AUTH_SETTING = (
    "SOURCES__FULFILLMENT__AUTH (JSON; or [sources.fulfillment.auth] in .dlt/config.toml, its "
    "secret part in .dlt/secrets.toml)"
)
ENDPOINT_SETTING = (
    "SOURCES__FULFILLMENT__ENDPOINT (JSON; or [sources.fulfillment.endpoint] in .dlt/config.toml)"
)
# rest_api's keys of each paginator type this project walks, plus `total_items_path`: the count
# of records a page-number API may report instead of (or beside) its count of pages.
PAGINATOR_KEYS: dict[str, frozenset[str]] = {
    "offset": frozenset({"limit", "offset", "offset_param", "limit_param", "total_path"}),
    "page_number": frozenset({"base_page", "page", "page_param", "total_path", "total_items_path"}),
    "json_link": frozenset({"next_url_path"}),
    "header_link": frozenset({"links_next_key"}),
    "cursor": frozenset({"cursor_path", "cursor_param"}),
}
AUTH_KEYS: dict[str, frozenset[str]] = {
    "api_key": frozenset({"name", "location", "api_key"}),
    "bearer": frozenset({"token"}),
    "http_basic": frozenset({"username", "password"}),
}
AUTH_SECRET_KEY = {"api_key": "api_key", "bearer": "token", "http_basic": "password"}
ENDPOINT_KEYS = frozenset({"path", "data_selector", "params", "paginator"})
SEED_AUTH = {"type": "api_key", "name": "api_key", "location": "query"}
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_MISSING = object()


def shape_error(what: str, setting: str) -> FulfillmentApiError:
    return FulfillmentApiError(f"{what}: set {setting}")


class JsonField:
    """A JSONPath into a page's body; a plain dotted path (`data`, `meta.total_count`) is read
    with dict lookups, ~20x faster than the JSONPath engine, which reads anything else."""

    def __init__(self, path: str, key: str, setting: str) -> None:
        if not isinstance(path, str) or not path.strip():
            raise shape_error(f"{key} is {path!r}, expected a JSONPath such as `data`", setting)
        self.path = path
        self._keys = path.split(".") if _PLAIN_KEY.match(path) else None
        try:
            self._compiled = None if self._keys else jsonpath.compile_path(path)
        except Exception as error:
            raise shape_error(
                f"{key} {path!r} is not a JSONPath ({type(error).__name__})", setting
            ) from None

    def find(self, body: Any) -> Any:
        """The value at the path, or `MISSING`."""
        if self._keys is None:
            values = jsonpath.find_values(self._compiled, body)  # type: ignore[arg-type]
            return values[0] if values else _MISSING
        for key in self._keys:
            if not isinstance(body, dict) or key not in body:
                return _MISSING
            body = body[key]
        return body

    def get(self, body: Any) -> Any:
        """The value at the path, None when absent."""
        value = self.find(body)
        return None if value is _MISSING else value


MISSING = _MISSING


def _whole(value: Any, key: str, setting: str, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise shape_error(
            f"{key} is {value!r}, expected a whole number of at least {minimum}", setting
        )
    return value


def _name(value: Any, key: str, setting: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise shape_error(f"{key} is {value!r}, expected a non-empty name", setting)
    return value


def _known_keys(given: dict[str, Any], known: frozenset[str], where: str, setting: str) -> None:
    unknown = sorted(set(given) - known - {"type"})
    if unknown:
        raise shape_error(
            f"{where} has no key {', '.join(map(repr, unknown))} (its keys: "
            f"{', '.join(sorted(known))})",
            setting,
        )


@dataclass(frozen=True)
class Paginator:
    """How pages follow each other: rest_api's paginator type and its keys, checked."""

    type: str
    options: dict[str, Any] = field(default_factory=dict)
    # Read from the body: an offset API's `total` (records), a page-number API's count of
    # records (`total_items_path`) and of pages (`total_path`), a link's or cursor's place.
    total_records: JsonField | None = None
    total_pages: JsonField | None = None
    reference: JsonField | None = None

    @property
    def position_param(self) -> str | None:
        """The query parameter that says which page a request asks for (None: a whole URL)."""
        if self.type == "offset":
            return str(self.options["offset_param"])
        if self.type == "page_number":
            return str(self.options["page_param"])
        if self.type == "cursor":
            return str(self.options["cursor_param"])
        return None

    @property
    def next_request_known(self) -> bool:
        """Whether the request after a page is known before it arrives (pages can be fetched
        ahead): offsets, and page numbers up to a count the API reports."""
        if self.type == "offset":
            return True
        return self.type == "page_number" and (
            self.total_pages is not None or self.total_records is not None
        )

    def walk_kind(self) -> str:
        """How the walk fetches its pages, for the run's metadata."""
        if self.next_request_known:
            return "read ahead: the next pages are known in advance and fetched concurrently"
        reason = {
            "page_number": "the API reports no count of pages or records",
            "json_link": "each page names the next one in its body",
            "header_link": "each page names the next one in its Link header",
            "cursor": "each page holds the cursor of the next one",
        }[self.type]
        return f"sequential: {reason}"


def read_paginator(given: Any, page_limit: int) -> Paginator:
    """`endpoint.paginator` as rest_api takes it (a table with `type`), the seed's offset pages
    of `page_limit` with `total` by default."""
    setting = ENDPOINT_SETTING
    if given is None:
        given = {"type": "offset"}
    if isinstance(given, str):  # rest_api also takes a bare type name
        given = {"type": given}
    if not isinstance(given, dict):
        raise shape_error(f"endpoint.paginator is {given!r}, expected a table with `type`", setting)
    kind = given.get("type")
    if kind not in PAGINATOR_KEYS:
        raise shape_error(
            f"endpoint.paginator.type is {kind!r}, expected one of {', '.join(PAGINATOR_KEYS)}",
            setting,
        )
    _known_keys(given, PAGINATOR_KEYS[kind], f"endpoint.paginator (type {kind})", setting)
    options = {k: v for k, v in given.items() if k != "type"}
    key = f"endpoint.paginator.{{}} (type {kind})"
    if kind == "offset":
        limit = _whole(options.get("limit", page_limit), key.format("limit"), setting, 1)
        options = {
            "limit": limit,
            "offset": _whole(options.get("offset", 0), key.format("offset"), setting, 0),
            "offset_param": _name(
                options.get("offset_param", "offset"), key.format("offset_param"), setting
            ),
            "limit_param": _name(
                options.get("limit_param", "limit"), key.format("limit_param"), setting
            ),
            "total_path": options.get("total_path", "total"),
        }
        if options["offset_param"] == options["limit_param"]:
            raise shape_error(
                f"endpoint.paginator's offset_param and limit_param are both "
                f"{options['offset_param']!r}",
                setting,
            )
        total = options["total_path"]
        return Paginator(
            kind,
            options,
            total_records=JsonField(total, key.format("total_path"), setting) if total else None,
        )
    if kind == "page_number":
        base = _whole(options.get("base_page", 0), key.format("base_page"), setting, 0)
        options = {
            "base_page": base,
            "page": _whole(options.get("page", base), key.format("page"), setting, base),
            "page_param": _name(
                options.get("page_param", "page"), key.format("page_param"), setting
            ),
            "total_path": options.get("total_path"),
            "total_items_path": options.get("total_items_path"),
        }
        pages, items = options["total_path"], options["total_items_path"]
        return Paginator(
            kind,
            options,
            total_records=JsonField(items, key.format("total_items_path"), setting)
            if items
            else None,
            total_pages=JsonField(pages, key.format("total_path"), setting) if pages else None,
        )
    if kind == "json_link":
        path = options.get("next_url_path", "next")
        return Paginator(
            kind,
            {"next_url_path": path},
            reference=JsonField(path, key.format("next_url_path"), setting),
        )
    if kind == "header_link":
        rel = _name(options.get("links_next_key", "next"), key.format("links_next_key"), setting)
        return Paginator(kind, {"links_next_key": rel})
    path = options.get("cursor_path", "cursors.next")
    return Paginator(
        kind,
        {
            "cursor_path": path,
            "cursor_param": _name(
                options.get("cursor_param", "cursor"), key.format("cursor_param"), setting
            ),
        },
        reference=JsonField(path, key.format("cursor_path"), setting),
    )


@dataclass(frozen=True)
class Auth:
    """How the secret travels: rest_api's `client.auth` without its secret part."""

    type: str
    name: str | None = None
    location: str | None = None
    username: str | None = None

    def rest_api(self, secret: str) -> dict[str, Any]:
        """rest_api's `client.auth` with the secret."""
        if self.type == "bearer":
            return {"type": "bearer", "token": secret}
        if self.type == "http_basic":
            return {"type": "http_basic", "username": self.username, "password": secret}
        return {"type": "api_key", "name": self.name, "location": self.location, "api_key": secret}

    def secret_forms(self, secret: str) -> tuple[str, ...]:
        """The secret as it travels, besides itself, for the mask: basic's base64 pair."""
        if self.type != "http_basic" or not secret:
            return ()
        return (base64.b64encode(f"{self.username}:{secret}".encode()).decode(),)

    def describe(self) -> str:
        if self.type == "api_key":
            return f"api_key in the {self.location} as `{self.name}`"
        if self.type == "http_basic":
            return f"http_basic as user `{self.username}`"
        return "bearer token"


def read_auth(given: Any) -> tuple[Auth, str | None]:
    """`client.auth` as rest_api takes it, and the secret it holds (None: the `api_key`
    setting's); the seed's `api_key` in the query by default."""
    setting = AUTH_SETTING
    if given is None:
        return Auth(**SEED_AUTH), None
    if not isinstance(given, dict):
        raise shape_error(f"auth is {type(given).__name__}, expected a table with `type`", setting)
    kind = given.get("type")
    if kind is None and set(given) & set(AUTH_SECRET_KEY.values()):
        # dlt reads a table from the first file that has it, never half from each.
        raise shape_error(
            "auth has a secret but no `type`: dlt reads the auth table from one file, so keep "
            "`type` beside the secret in .dlt/secrets.toml, or keep the table in config.toml "
            "and the secret in SOURCES__FULFILLMENT__API_KEY",
            setting,
        )
    if kind not in AUTH_KEYS:
        raise shape_error(f"auth.type is {kind!r}, expected one of {', '.join(AUTH_KEYS)}", setting)
    _known_keys(given, AUTH_KEYS[kind], f"auth (type {kind})", setting)
    secret = given.get(AUTH_SECRET_KEY[kind])
    secret = str(secret) if secret else None
    if kind == "api_key":
        location = given.get("location", "query")
        if location == "cookie":
            # rest_api's APIKeyAuth names it but raises NotImplementedError on the first request.
            raise shape_error(
                "auth.location is 'cookie', which dlt's rest_api does not implement; send the "
                "key in the query or a header",
                setting,
            )
        if location not in ("query", "header"):
            raise shape_error(f"auth.location is {location!r}, expected query or header", setting)
        name = given.get("name")
        if not isinstance(name, str) or not name.strip():
            raise shape_error(
                f"auth (type api_key, location {location}) has no `name`: the {location} "
                "parameter the key travels in",
                setting,
            )
        return Auth("api_key", name=name, location=location), secret
    if kind == "http_basic":
        username = given.get("username")
        if not isinstance(username, str) or not username:
            raise shape_error("auth (type http_basic) has no `username`", setting)
        return Auth("http_basic", username=username), secret
    return Auth("bearer"), secret


@dataclass(frozen=True)
class ApiShape:
    """Where the records are and how the walk reaches them: one value for the whole source."""

    path: str
    records: JsonField
    params: dict[str, Any]
    paginator: Paginator
    auth: Auth

    def where(self, url: str | None) -> str:
        """Which page a URL asks for, for messages: `offset 200`, `page 3`, `cursor 'c2'`, or
        the page a link named. Never the query itself (a key may travel in it)."""
        param = self.paginator.position_param
        query = parse_qs(urlsplit(url or "").query)
        kind = self.paginator.type
        if param is not None and param in query:
            value = query[param][0]
            if kind == "cursor":
                shown = value if len(value) <= 24 else value[:21] + "..."
                return f"cursor {shown!r}"
            return f"{'offset' if kind == 'offset' else 'page'} {value}"
        if kind == "offset":
            return f"offset {self.paginator.options['offset']}"
        if kind == "page_number":
            return f"page {self.paginator.options['page']}"
        if kind == "cursor":
            return "the first page"
        first = urlsplit(url or "").path.rstrip("/") == self.path.rstrip("/")
        return "the first page" if first and not query else "a page its previous page linked"

    def total_records(self, body: Any) -> Any:
        field_ = self.paginator.total_records
        return None if field_ is None else field_.get(body)

    def total_pages(self, body: Any) -> Any:
        field_ = self.paginator.total_pages
        return None if field_ is None else field_.get(body)

    def last_page(self, body: Any, page_size: int) -> int | None:
        """A page-number walk's last page to ask for, from the count the API reports: the last
        page of `total_path`, or the (empty) page after `total_items_path`'s records."""
        base = int(self.paginator.options.get("base_page", 0))
        pages = self.total_pages(body)
        if type(pages) is int:
            return base + pages - 1
        items = self.total_records(body)
        if type(items) is int and page_size > 0:
            return base + math.ceil(items / page_size)
        return None

    def describe(self) -> dict[str, Any]:
        """The shape in force, for the raw table's metadata: no secret."""
        return {
            "path": self.path,
            "data_selector": self.records.path,
            "params": {k: str(v) for k, v in self.params.items()},
            "paginator": {"type": self.paginator.type, **self.paginator.options},
            "auth": self.auth.describe(),
            "walk": self.paginator.walk_kind(),
        }


def read_shape(
    endpoint: Any, auth: Any, page_limit: int = settings.PAGE_LIMIT
) -> tuple[ApiShape, str | None]:
    """The source's `endpoint` and `auth` settings as one shape, and the secret `auth` holds."""
    setting = ENDPOINT_SETTING
    endpoint = {} if endpoint is None else endpoint
    if not isinstance(endpoint, dict):
        raise shape_error(
            f"endpoint is {type(endpoint).__name__}, expected a table of rest_api's endpoint keys",
            setting,
        )
    _known_keys(endpoint, ENDPOINT_KEYS, "endpoint", setting)
    path = endpoint.get("path", settings.ENDPOINT_PATH)
    if not isinstance(path, str) or not path.strip() or "?" in path or "://" in path:
        raise shape_error(
            f"endpoint.path is {path!r}, expected a path such as /v1/fulfillment (query "
            "parameters go in endpoint.params)",
            setting,
        )
    params = endpoint.get("params") or {}
    if not isinstance(params, dict):
        raise shape_error(f"endpoint.params is {params!r}, expected a table", setting)
    paginator = read_paginator(endpoint.get("paginator"), page_limit)
    taken = {paginator.position_param, paginator.options.get("limit_param")}
    clash = sorted(str(name) for name in taken & set(params) if name)
    if clash:
        raise shape_error(
            f"endpoint.params sets {', '.join(clash)}, which the paginator sets on each page",
            setting,
        )
    auth_, secret = read_auth(auth)
    if auth_.type == "api_key" and auth_.location == "query" and auth_.name in params:
        raise shape_error(f"endpoint.params sets {auth_.name}, the key's own parameter", setting)
    records = JsonField(endpoint.get("data_selector", "data"), "endpoint.data_selector", setting)
    return ApiShape(path, records, dict(params), paginator, auth_), secret
