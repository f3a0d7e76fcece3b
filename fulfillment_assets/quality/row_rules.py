"""The row-level rules on the raw table, written once: the checks count the rows that break
them, and `orders_validated` / `orders_rejected` are built from the very same rules."""

from collections.abc import Collection
from dataclasses import dataclass

from fulfillment_assets import settings
from fulfillment_assets.warehouse.sql import identifier, literals


@dataclass(frozen=True)
class RowRule:
    """A row breaks the rule where `condition` (SQL of the project's dialect) is true."""

    name: str
    condition: str
    reason: str


def variant_columns(columns: Collection[str], column: str) -> list[str]:
    """dlt's variant columns of `column` (e.g. customer_id__v_bigint): values of another type."""
    return sorted(name for name in columns if name.startswith(f"{column}__v_"))


def row_rules(columns: Collection[str]) -> list[RowRule]:
    """The row-level rules for a raw table with these columns (variant columns vary by data).

    Statuses are judged only against a configured set (FULFILLMENT_ACCEPTED_STATUSES): the API's
    statuses are not stated anywhere, so without the setting no status rejects a row.
    """

    def missing(column: str) -> str:
        # A value of the wrong type is a drift, reported by its own rule, not a null.
        return " AND ".join(
            [f"{identifier(column)} IS NULL"]
            + [f"{identifier(v)} IS NULL" for v in variant_columns(columns, column)]
        )

    rules = [
        RowRule("id_not_null", "id IS NULL", "id is null"),
        RowRule("customer_id_not_null", missing("customer_id"), "customer_id is null"),
        RowRule("order_status_not_null", missing("order_status"), "order_status is null"),
    ]
    accepted = settings.accepted_statuses()
    if accepted:
        rules.append(
            RowRule(
                "order_status_accepted",
                f"order_status IS NOT NULL AND order_status NOT IN ({literals(accepted)})",
                "order_status is not an accepted status",
            )
        )
    for column in settings.CONTRACT_COLUMNS:
        for variant in variant_columns(columns, column):
            data_type = variant.rsplit("__v_", 1)[1]
            rules.append(
                RowRule(
                    f"{variant}_drift",
                    f"{identifier(variant)} IS NOT NULL",
                    f"{column} is {data_type}",
                )
            )
    return rules
