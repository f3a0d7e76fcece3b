"""Every knob of the project in one place: names, paths, statuses, thresholds, windows.

Settings come through two paths (docs/configuration.md lists each once, with its default):
the source's are dlt configuration (`[sources.fulfillment]` in `.dlt/*.toml` or
`SOURCES__FULFILLMENT__*`, resolved by dlt when a run starts); the rest are environment variables
read here, the only module of the package that reads the environment, when used (never cached at
import), so tests and deployments switch them without code changes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlt.common.schema import TColumnSchema

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Names shared by the source, the pipeline, the assets and the SQL.
SOURCE_NAME = "fulfillment"
RESOURCE_NAME = "fulfillment_data"
PIPELINE_NAME = "fulfillment"
DATASET_NAME = "fulfillment"
ASSET_GROUP = "fulfillment"
ENDPOINT_PATH = "/v1/fulfillment"
# Raw-table columns that are no API field's: when a full walk found the order gone (the project's,
# see ingest/deletes.py) and the load that last wrote the row (dlt's).
DELETED_AT = "_deleted_at"
LOAD_ID = "_dlt_load_id"
# The column `orders_rejected` adds beside the raw table's, which it copies: no API field gets it.
# (The daily summary's columns are a table of their own, no raw column beside them.)
REJECTION_REASONS = "rejection_reasons"


def is_loopback_host(host: str | None) -> bool:
    """This machine only: where plain http may carry the API key, and where the demo API listens
    unless told otherwise."""
    if host == "localhost":
        return True
    try:
        return ip_address(host or "").is_loopback
    except ValueError:
        return False


# The seed's HTTP contract.
PAGE_LIMIT = 100
RETRY_STATUS_CODES: tuple[int, ...] = (429, 500, 502, 503, 504)
MAX_RETRIES = 3  # so at most 1 + 3 attempts per page
BACKOFF_FACTOR = 2.0  # waits of 2, 4, 8 s between attempts unless Retry-After says otherwise
REQUEST_TIMEOUT_SECONDS = 60.0
# The longest wait a rate-limited page waits for when a 429 announces it (Retry-After or a reset
# header); such waits do not count against MAX_RETRIES, up to RATE_LIMIT_WAITS of them a page.
MAX_RETRY_WAIT_SECONDS = 120.0
RATE_LIMIT_WAITS = 10
# An API whose pages never end must not run forever: the source fails past this many records.
MAX_RECORDS = 50_000_000
# Passes over a listing that moved while it was walked (source/completeness.py), the first
# included: a second pass finds what the first was shifted past; a third covers a busy spell.
MAX_WALK_PASSES = 3
# Without `total`, a listing that grows while it is walked has a tail the walk could chase for as
# long as the shop sells (a few records a page). Pages of at most a quarter of the walk's largest,
# this many one after another, end such a walk, unproven (source/pages.py); 0: only an empty page
# ends it. A quarter, not "any short page": APIs that cap pages by bytes send pages of varying size.
TAIL_CHASE_PAGES = 3
# A full walk commits its records in chunks (source/chunks.py): a dlt load every CHUNK_PAGES pages
# or CHUNK_SECONDS seconds, the first reached. The time bound is what protects a slow or
# rate-limited API's walk (a commit every 5 minutes); the page bound is high enough that a fast
# API's walk of 1,000,000 records (~25 s) is one chunk: each further chunk costs a load and its
# bookkeeping, 1.15x for a walk of 1,000,000 in two chunks (docs/benchmarks.md). An unfinished
# walk older than MAX_WALK_AGE_HOURS is not resumed: it starts afresh.
CHUNK_PAGES = 20_000
CHUNK_SECONDS = 300.0
MAX_WALK_AGE_HOURS = 168.0
# Records per Arrow table handed to dlt (0: plain rows, dlt's normalizer does the typing).
ARROW_BATCH_ROWS = 10_000
# Pages fetched at once when the API reports `total`; a 429 halves it (down to 1).
PAGE_CONCURRENCY = 8
# ...when the API takes longer than this to answer a page; a faster API gets a few pages fetched
# ahead (measured best on 2 cores: 1 ahead 35-37 s, 3 ahead 30-31 s per 1M records), as more
# threads would only contend for the GIL.
READ_AHEAD_MIN_LATENCY_SECONDS = 0.005
READ_AHEAD_FAST_API_PAGES = 3

# The statuses the bundled demo API serves. The seed states no statuses for the user's API: the
# accepted-status check judges against FULFILLMENT_ACCEPTED_STATUSES only when it is set, and
# otherwise learns the statuses from the first load (see quality/checks.py).
ORDER_STATUSES: tuple[str, ...] = (
    "pending",
    "processing",
    "shipped",
    "delivered",
    "cancelled",
    "returned",
)

# Column hints for the loaded table: the three contract columns of the seed and the other fields
# the API documents. Fields the API adds later are kept by dlt's schema evolution.
# `id` has no type here: the seed does not state it. It is the destination's (the raw table's
# stored type), else `SOURCES__FULFILLMENT__ID_TYPE`, else learned from the first batch of the
# first load: text if any id is text, else bigint (source/arrow.py).
ID_TYPES = ("bigint", "text")
CONTRACT_COLUMNS: dict[str, TColumnSchema] = {
    "id": {"nullable": False},
    "customer_id": {"data_type": "text", "nullable": True},
    "order_status": {"data_type": "text", "nullable": True},
}
DOCUMENTED_COLUMNS: dict[str, TColumnSchema] = {
    "created_at": {"data_type": "timestamp", "nullable": True},
    "updated_at": {"data_type": "timestamp", "nullable": True},
    "amount": {"data_type": "double", "nullable": True},
    "currency": {"data_type": "text", "nullable": True},
    "items_count": {"data_type": "bigint", "nullable": True},
    "shipment": {"data_type": "json", "nullable": True},
}
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "id": "Fulfillment order id, unique; the merge key. An integer (bigint), or text when the "
    "API's ids are text (SOURCES__FULFILLMENT__ID_TYPE).",
    "customer_id": "Customer the order belongs to; null when the API does not know it.",
    "order_status": "Lifecycle status of the order (as the API names it).",
    "created_at": "When the order was created (UTC).",
    "updated_at": "When the API last changed the order (UTC); the newest version wins a merge.",
    "amount": "Order amount in `currency`.",
    "currency": "ISO 4217 currency code.",
    "items_count": "Number of items in the order.",
    "shipment": "Shipment details (carrier, tracking number, shipped_at) as JSON.",
}


# Data-quality thresholds, as the fraction of rows that break a rule: above `warn_above` the check
# fails with WARN severity (shown, does not block), above `error_above` with ERROR (blocks the
# downstream tables). Documented in docs/architecture.md ("The checks in detail").
@dataclass(frozen=True)
class Threshold:
    warn_above: float
    error_above: float


CHECK_THRESHOLDS: dict[str, Threshold] = {
    "customer_id_not_null": Threshold(warn_above=0.0, error_above=0.05),
    "order_status_not_null": Threshold(warn_above=0.0, error_above=0.05),
    "order_status_accepted": Threshold(warn_above=0.0, error_above=0.01),
}
# Up to this many offending ids are shown on a check result.
SAMPLE_IDS = 20

# Freshness: the raw table and everything on it should be newer than FAIL, ideally than WARN.
FRESHNESS_FAIL_WINDOW = timedelta(hours=24)
FRESHNESS_WARN_WINDOW = timedelta(hours=12)
# How often the freshness sensor looks, and how long it waits after requesting a refresh before it
# requests another (so a failing API is not hammered with runs).
FRESHNESS_SENSOR_INTERVAL_SECONDS = 300
FRESHNESS_RETRY_BACKOFF = timedelta(minutes=30)
# The regular refresh (off by default; turn it on in the UI under Automation).
REFRESH_CRON = "0 */6 * * *"


def data_dir() -> Path:
    """Where the DuckDB file and dlt's pipeline state live (FULFILLMENT_DATA_DIR)."""
    return Path(os.environ.get("FULFILLMENT_DATA_DIR", PROJECT_ROOT / "data")).resolve()


def pipelines_dir() -> Path:
    """dlt's working dir, set explicitly so it never lands in /var/dlt or ~/.dlt."""
    return data_dir() / "dlt_pipelines"


# dlt's credentials setting of the DuckDB destination: the DuckDB file, when set.
DUCKDB_CREDENTIALS = "DESTINATION__DUCKDB__CREDENTIALS"


def duckdb_path() -> Path:
    """The default DuckDB file; DESTINATION__DUCKDB__CREDENTIALS overrides it."""
    return Path(os.environ.get(DUCKDB_CREDENTIALS, data_dir() / "warehouse.duckdb"))


def duckdb_credentials_set() -> bool:
    """Whether DESTINATION__DUCKDB__CREDENTIALS names the DuckDB file (else: the data dir's)."""
    return DUCKDB_CREDENTIALS in os.environ


def accepted_statuses() -> tuple[str, ...] | None:
    """Statuses the accepted-status check allows: FULFILLMENT_ACCEPTED_STATUSES (a,b,c), or None
    when not set (the check then learns the statuses instead of judging them)."""
    configured = os.environ.get("FULFILLMENT_ACCEPTED_STATUSES", "")
    statuses = tuple(status.strip() for status in configured.split(",") if status.strip())
    return statuses or None


def dead_run_sensor_interval_seconds() -> int:
    """How often the daemon looks for runs whose process died (seconds).

    FULFILLMENT_DEAD_RUN_SENSOR_INTERVAL_SECONDS, read when the code location loads.
    """
    return int(os.environ.get("FULFILLMENT_DEAD_RUN_SENSOR_INTERVAL_SECONDS", "60"))


def duckdb_memory_limit() -> str:
    """DuckDB's memory cap (FULFILLMENT_DUCKDB_MEMORY_LIMIT); past it DuckDB spills to disk."""
    return os.environ.get("FULFILLMENT_DUCKDB_MEMORY_LIMIT", "128MB")


def lock_wait_seconds() -> float:
    """The longest wait for a lock another process of the project holds (the loading
    pipeline's, the DuckDB file's): FULFILLMENT_LOCK_WAIT_SECONDS, 6 h by default."""
    return float(os.environ.get("FULFILLMENT_LOCK_WAIT_SECONDS", str(6 * 3600)))


def destination_name() -> str:
    """The dlt destination (FULFILLMENT_DESTINATION): duckdb by default, any dlt destination."""
    return os.environ.get("FULFILLMENT_DESTINATION", "duckdb")


# Operators' overrides of the freshness windows and sensor cadence above, in seconds (tests use
# short ones). Dagster refuses freshness windows under a minute.
def freshness_fail_window() -> timedelta:
    return _seconds("FULFILLMENT_FRESHNESS_FAIL_SECONDS", FRESHNESS_FAIL_WINDOW)


def freshness_warn_window() -> timedelta | None:
    """None when an overridden fail window leaves no room for a warning before it."""
    warn = _seconds("FULFILLMENT_FRESHNESS_WARN_SECONDS", FRESHNESS_WARN_WINDOW)
    return warn if timedelta(minutes=1) <= warn < freshness_fail_window() else None


def freshness_retry_backoff() -> timedelta:
    return _seconds("FULFILLMENT_FRESHNESS_BACKOFF_SECONDS", FRESHNESS_RETRY_BACKOFF)


def freshness_sensor_interval_seconds() -> int:
    return int(
        _seconds(
            "FULFILLMENT_FRESHNESS_SENSOR_INTERVAL_SECONDS",
            timedelta(seconds=FRESHNESS_SENSOR_INTERVAL_SECONDS),
        ).total_seconds()
    )


# Alerts: a Slack-compatible webhook (unset: no alerts), the UI its messages link to, and how
# often the alert sensor looks.
ALERT_SENSOR_INTERVAL_SECONDS = 60
DEFAULT_UI_URL = "http://127.0.0.1:3000"


def alert_webhook_url() -> str | None:
    return os.environ.get("FULFILLMENT_ALERT_WEBHOOK_URL") or None


def alert_retry_seconds() -> float:
    """The first wait between attempts to deliver an alert (then doubled: 1, 2 s):
    FULFILLMENT_ALERT_RETRY_SECONDS (tests make it small)."""
    return float(os.environ.get("FULFILLMENT_ALERT_RETRY_SECONDS", "1.0"))


def ui_url() -> str:
    return (os.environ.get("FULFILLMENT_UI_URL") or DEFAULT_UI_URL).rstrip("/")


def alert_sensor_interval_seconds() -> int:
    return int(
        _seconds(
            "FULFILLMENT_ALERT_SENSOR_INTERVAL_SECONDS",
            timedelta(seconds=ALERT_SENSOR_INTERVAL_SECONDS),
        ).total_seconds()
    )


def _seconds(variable: str, default: timedelta) -> timedelta:
    value = os.environ.get(variable)
    if not value:
        return default
    try:
        return timedelta(seconds=float(value))
    except ValueError:
        raise ValueError(f"{variable} must be a number of seconds, not {value!r}") from None


# The page walk logs its progress (pages, records, records/s, ETA) at most this often.
PROGRESS_LOG_SECONDS = 2.0
