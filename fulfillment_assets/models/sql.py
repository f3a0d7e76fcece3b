"""The models' SQL, written once (the project's dialect, rendered per destination by
`warehouse/sql.py`): validated and rejected rows by the row rules, the daily summary over both."""

from fulfillment_assets import settings
from fulfillment_assets.contract import REJECTED, VALIDATED
from fulfillment_assets.ingest.deletes import not_deleted
from fulfillment_assets.quality.row_rules import RowRule, row_rules
from fulfillment_assets.settings import DELETED_AT, REJECTION_REASONS
from fulfillment_assets.source.arrow import COLLISION_SUFFIX
from fulfillment_assets.warehouse.sql import identifier, literal

RAW = settings.RESOURCE_NAME

# The columns the models read, for the empty tables built before the API ever sent a record.
NO_ORDERS = (
    "CAST(NULL AS BIGINT) AS id, CAST(NULL AS TEXT) AS customer_id, "
    "CAST(NULL AS TEXT) AS order_status, CAST(NULL AS TIMESTAMPTZ) AS created_at, "
    "CAST(NULL AS DOUBLE) AS amount"
)
# dlt data types the summary can bucket by day and add up; other shapes give NULL there.
DAY_TYPES = {"timestamp", "date"}
NUMBER_TYPES = {"double", "bigint", "decimal", "wei"}


def _data_columns(raw_columns: dict[str, str]) -> list[str]:
    """The raw table's data columns, quoted: no dlt bookkeeping, no variant columns (a rule
    covers them). An API field named after dlt's columns (`_dlt_load_id__collision_1`) is data."""
    return [
        identifier(name)
        for name in raw_columns
        if (not name.startswith("_dlt_") or COLLISION_SUFFIX in name)
        and "__v_" not in name
        and name != DELETED_AT
    ]


def _breaks_any(rules: list[RowRule]) -> str:
    return " OR ".join(f"COALESCE({rule.condition}, FALSE)" for rule in rules)


def validated_select(raw_columns: dict[str, str]) -> str:
    """The validated table's SELECT for a raw table with these columns."""
    if not raw_columns:
        return f"SELECT {NO_ORDERS} WHERE FALSE"
    return (
        f"SELECT {', '.join(_data_columns(raw_columns))} FROM {RAW} "
        f"WHERE {not_deleted(raw_columns)} AND NOT ({_breaks_any(row_rules(raw_columns))})"
    )


def rejected_select(raw_columns: dict[str, str]) -> str:
    """The rejected table's SELECT: every rule a row breaks in `rejection_reasons` (an API field
    of that name is loaded as `rejection_reasons__collision_1`, see `source/arrow.py`)."""
    if not raw_columns:
        return f"SELECT {NO_ORDERS}, CAST(NULL AS TEXT) AS {REJECTION_REASONS} WHERE FALSE"
    rules = row_rules(raw_columns)
    # NULL-safe on every destination (concat_ws returns NULL on Snowflake if any part is NULL):
    # each reason as '; reason' or '', then the leading '; ' cut off. A reason is a literal: it
    # may name a type read from the destination's schema.
    reasons = " || ".join(
        f"COALESCE(CASE WHEN COALESCE({rule.condition}, FALSE) THEN {literal('; ' + rule.reason)} "
        "END, '')"
        for rule in rules
    )
    drifted = [identifier(name) for name in raw_columns if "__v_" in name]
    return (
        f"SELECT {', '.join(_data_columns(raw_columns) + drifted)}, "
        f"SUBSTRING({reasons}, 3) AS {REJECTION_REASONS} "
        f"FROM {RAW} WHERE {not_deleted(raw_columns)} AND ({_breaks_any(rules)})"
    )


def summary_select(validated: dict[str, str], rejected: dict[str, str]) -> str:
    """Orders and amounts per UTC day: created_at / amount as NULL where absent or not a
    timestamp / number (an API that does not send them still gets a summary by status)."""

    def day(columns: dict[str, str]) -> str:
        if columns.get("created_at") == "timestamp":
            # The day in UTC, whatever the session's time zone.
            return "CAST(created_at AT TIME ZONE 'UTC' AS DATE)"
        if columns.get("created_at") == "date":
            return "created_at"
        return "CAST(NULL AS DATE)"

    def amount(columns: dict[str, str]) -> str:
        if columns.get("amount") in NUMBER_TYPES:
            return "CAST(sum(amount) AS DOUBLE)"
        return "CAST(NULL AS DOUBLE)"

    status = "order_status" if "order_status" in validated else "CAST(NULL AS TEXT)"
    return (
        f"SELECT {day(validated)} AS order_date, 'validated' AS quality, {status} AS order_status, "
        f"count(*) AS orders, {amount(validated)} AS amount_total "
        f"FROM {VALIDATED} GROUP BY 1, 2, 3 "
        "UNION ALL "
        f"SELECT {day(rejected)}, 'rejected', CAST(NULL AS TEXT), count(*), {amount(rejected)} "
        f"FROM {REJECTED} GROUP BY 1, 2, 3"
    )
