"""Hostile values, against a fake API of the test's own: injection-shaped text round-trips
byte-exact and accepted statuses are matched literally; integers past what their column holds are
kept exactly (never two values made one) and named by the checks; a number JSON cannot carry
fails naming the reason and the page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    serialize_value,
)

from fulfillment_assets import settings
from fulfillment_assets.source.arrow import page_to_arrow
from fulfillment_assets.source.transport import PageResponse
from fulfillment_assets_tests.fake_api import RecordsApi, serve_fake_api
from fulfillment_assets_tests.helpers import (
    RAW_ONLY,
    TEST_API_KEY,
    failure_message,
    materialize_all,
    query,
)
from fulfillment_assets_tests.served.cli import materialize_everything_from_the_cli

# Text that would change a statement pasted together from values, or a report quoting them.
INJECTIONS = [
    "x'); DROP TABLE fulfillment_data; --",
    "' OR '1'='1",
    "\\",
    "a\\b",
    "\\'; --",
    "C:\\new\\table\\x00",
    "$$",
    "$tag$ x $tag$",
    "%s",
    "%(id)s %% %",
    "\u200fright-to-left mark",
    "e\u0301",  # "é" decomposed (NFD) ...
    "\u00e9",  # ... and composed (NFC): two values, never one
    "\"double\" `back` 'single'",
    "tab\there",
    "line\nbreak\r\nand CR\r",
    "/* comment */ ;",
    "y" * 1_048_576,
    # FULFILLMENT_ACCEPTED_STATUSES `it's, 50%_off ,a\b`: matched literally, never as a pattern.
    "it's",
    "50%_off",
    "50xyoff",
    " it's",
]
# PostgreSQL cannot store NUL in text (see the NUL test below): on DuckDB only.
NUL_VALUE = "nul\x00byte"
ACCEPTED_SETTING = "it's, 50%_off ,a\\b"
LITERALLY_ACCEPTED = {"it's", "50%_off", "a\\b"}
# Orders of an accepted status beside the hostile ones: the rejected stay under 1 % (the
# accepted-status check's ERROR threshold), so the models are built and can be read.
FILLER_ORDERS = 3000


def hostile_orders(values: list[str]) -> list[dict[str, object]]:
    """One order per value as `order_status`, the values reversed as `customer_id`, then filler."""
    orders: list[dict[str, object]] = [
        {"id": n, "order_status": status, "customer_id": customer}
        for n, (status, customer) in enumerate(zip(values, reversed(values), strict=True), 1)
    ]
    first_filler = len(orders) + 1
    orders += [
        {"id": n, "order_status": "50%_off", "customer_id": f"cus_{n}"}
        for n in range(first_filler, first_filler + FILLER_ORDERS)
    ]
    return orders


def _rows(data_dir: Path, table: str) -> list[tuple]:
    return query(
        data_dir, f"SELECT id, order_status, customer_id FROM fulfillment.{table} ORDER BY id"
    )


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.every_destination
def test_injection_shaped_values_round_trip_byte_exact_and_statuses_match_literally(
    destination: str,
    monkeypatch: pytest.MonkeyPatch,
    instance: DagsterInstance,
    isolated_environment: Path,
) -> None:
    values = INJECTIONS + ([NUL_VALUE] if destination == "duckdb" else [])
    orders = hostile_orders(values)
    served = [(o["id"], o["order_status"], o["customer_id"]) for o in orders]
    with serve_fake_api(RecordsApi(orders), monkeypatch):
        assert materialize_all(instance).success  # no accepted statuses: every order validated
        assert _rows(isolated_environment, "fulfillment_data") == served
        assert _rows(isolated_environment, "orders_validated") == served
        assert _rows(isolated_environment, "orders_rejected") == []
        seen = query(
            isolated_environment, "SELECT order_status FROM fulfillment.order_statuses_seen"
        )
        assert sorted(status for (status,) in seen) == sorted(set(values) | {"50%_off"})

        monkeypatch.setenv("FULFILLMENT_ACCEPTED_STATUSES", ACCEPTED_SETTING)
        assert materialize_all(instance).success

    assert _rows(isolated_environment, "fulfillment_data") == served
    accepted = [row for row in served if row[1] in LITERALLY_ACCEPTED]
    assert _rows(isolated_environment, "orders_validated") == accepted
    # `50xyoff` and ` it's` among the rejected: no pattern, no trimming of the API's values.
    rejected = [row for row in served if row[1] not in LITERALLY_ACCEPTED]
    assert _rows(isolated_environment, "orders_rejected") == rejected
    assert query(
        isolated_environment, "SELECT DISTINCT rejection_reasons FROM fulfillment.orders_rejected"
    ) == [("order_status is not an accepted status",)]
    seen_again = query(
        isolated_environment, "SELECT order_status FROM fulfillment.order_statuses_seen"
    )
    assert sorted(seen_again) == sorted(seen)


@pytest.mark.parametrize(
    ("configured", "statuses"),
    [
        (ACCEPTED_SETTING, ("it's", "50%_off", "a\\b")),
        (' "quoted" ,\tpadded\n', ('"quoted"', "padded")),
        ("a,,b,", ("a", "b")),
        ("", None),
        (" , ", None),
    ],
)
def test_accepted_statuses_are_trimmed_items_of_a_comma_list_taken_literally(
    configured: str, statuses: tuple[str, ...] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULFILLMENT_ACCEPTED_STATUSES", configured)

    assert settings.accepted_statuses() == statuses


BIG_CUSTOMER_IDS = {1: 2**63, 2: 2**70, 3: 2**70 + 1}


class BigNumbersApi:
    """100 orders; customer_id an integer past 64 bits on three, amount 2**60 on one; or, with
    `infinite`, 250 orders where order 157's `amount` is `1e400` (valid JSON, past any double)
    and order 158's `items_count` an integer of 400 digits (exact to Python's parser)."""

    infinite = False

    def page(self, offset: int, limit: int, params: dict[str, str]) -> bytes:
        if self.infinite:
            plain = [
                {"id": n, "customer_id": f"cus_{n}", "order_status": "shipped", "amount": 1.5}
                for n in range(1, 251)
            ]
            plain[157 - 1]["amount"] = 0.125  # the placeholder written as 1e400 below
            plain[158 - 1]["items_count"] = 10**400
            body = json.dumps({"data": plain[offset : offset + limit], "total": len(plain)})
            return body.replace('"amount": 0.125', '"amount": 1e400').encode()
        orders = [
            {
                "id": n,
                "customer_id": BIG_CUSTOMER_IDS.get(n, f"cus_{n}"),
                "order_status": "shipped",
                "amount": 2**60 if n == 4 else 1.5,
                "items_count": 2**64 if n == 5 else 1,
            }
            for n in range(1, 101)
        ]
        # Python's json writes integers of any size (orjson stops at 64 bits).
        return json.dumps({"data": orders[offset : offset + limit], "total": len(orders)}).encode()


@pytest.fixture
def big_numbers(monkeypatch: pytest.MonkeyPatch) -> Iterator[BigNumbersApi]:
    api = BigNumbersApi()
    with serve_fake_api(api, monkeypatch):
        yield api


@pytest.mark.every_destination
def test_integers_past_their_column_are_kept_exactly_and_named_by_the_checks(
    big_numbers: BigNumbersApi, instance: DagsterInstance, isolated_environment: Path
) -> None:
    result = materialize_all(instance, raise_on_error=False)

    # The raw table loads; the drift in a contract column blocks the models (ERROR).
    raw_loaded = [
        e for e in result.all_events if e.is_step_success and e.step_key == "fulfillment_ingest"
    ]
    assert raw_loaded, "the raw table must load"
    kept = query(
        isolated_environment,
        "SELECT id, CAST(customer_id__v_decimal AS TEXT) FROM fulfillment.fulfillment_data "
        "WHERE customer_id__v_decimal IS NOT NULL ORDER BY id",
    )
    # Two customers 2**70 and 2**70 + 1 stay two; no value is rounded.
    assert [(row_id, text.split(".")[0]) for row_id, text in kept] == [
        (n, str(value)) for n, value in sorted(BIG_CUSTOMER_IDS.items())
    ]
    ((amount, items_count),) = query(
        isolated_environment,
        "SELECT (SELECT amount__v_bigint FROM fulfillment.fulfillment_data WHERE id = 4), "
        "(SELECT CAST(items_count__v_decimal AS TEXT) FROM fulfillment.fulfillment_data "
        "WHERE id = 5)",
    )
    # 2**60 in a double column stays an exact integer; 2**64 past bigint, an exact decimal.
    assert (amount, items_count.split(".")[0]) == (2**60, str(2**64))
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    contract = checks["schema_contract"]
    assert not contract.passed and contract.severity == AssetCheckSeverity.ERROR
    assert "customer_id has 3 values of type decimal" in str(contract.description)
    other = checks["values_of_their_column_type"]
    assert not other.passed and other.severity == AssetCheckSeverity.WARN
    assert "items_count: 1 values of type decimal" in str(other.description)


def test_a_number_json_cannot_carry_fails_naming_the_page_record_and_field(
    big_numbers: BigNumbersApi, instance: DagsterInstance, isolated_environment: Path
) -> None:
    assert materialize_all(instance, selection=RAW_ONLY).success
    before = query(isolated_environment, "SELECT * FROM fulfillment.fulfillment_data ORDER BY id")
    big_numbers.infinite = True

    result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    message = failure_message(result)
    assert (
        "the page at offset 100 has record `id` 157 whose field `amount` holds the number 1e400, "
        "past what a double holds"
    ) in message, message
    assert TEST_API_KEY not in message
    # Nothing of the run was loaded (the pages before it neither).
    assert (
        query(isolated_environment, "SELECT * FROM fulfillment.fulfillment_data ORDER BY id")
        == before
    )


def test_an_integer_past_any_double_is_read_exactly_and_kept_as_its_digits() -> None:
    # orjson refuses it (infinity as a double); it is valid JSON, and Python's parser is exact.
    response = PageResponse()
    response.body = b'{"data": [{"id": 1, "items_count": 1' + b"0" * 400 + b"}]}"

    records = response.json()["data"]

    assert records == [{"id": 1, "items_count": 10**400}] and not response.numbers_past_double
    table = page_to_arrow(records)
    assert table.column("items_count__v_text").to_pylist() == [str(10**400)]


HUGE_STATUS = "x" * 1_048_576
TERMINAL_TRICKS = "\x1b[31mred\x1b[0m\r\u202eevil\u200f"
# What must never reach a report or a terminal raw: ESC, CR, a bidi override, an RTL mark.
RAW_TRICKS = {"\x1b", "\r", "\u202e", "\u200f"}


class HostileStatusesApi:
    """50 orders; from the second run on, one has a 1 MB status and one a status full of ANSI
    escapes, a carriage return, a bidi override and an RTL mark."""

    hostile = False

    def page(self, offset: int, limit: int, params: dict[str, str]) -> dict:
        orders = [
            {"id": n, "customer_id": f"cus_{n}", "order_status": "shipped"} for n in range(1, 51)
        ]
        if self.hostile:
            orders[0]["order_status"] = HUGE_STATUS
            orders[1]["order_status"] = TERMINAL_TRICKS
        return {"data": orders[offset : offset + limit], "total": len(orders)}


def _strings(value: object) -> Iterator[str]:
    """Every text in a value parsed from JSON, keys too."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.mark.slow  # over 5 s: left out of the fast lane
@pytest.mark.every_destination
def test_reports_quote_hostile_values_bounded_and_escaped_and_the_table_keeps_them_whole(
    monkeypatch: pytest.MonkeyPatch, dagster_home: Path, isolated_environment: Path, tmp_path: Path
) -> None:
    api = HostileStatusesApi()
    with serve_fake_api(api, monkeypatch):
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            # The statuses seen first are the known ones.
            assert materialize_all(instance).success
        api.hostile = True
        # The second run from the command line, as a user would start it: what it prints too.
        completed = materialize_everything_from_the_cli(dagster_home)
    printed = completed.stdout + completed.stderr
    assert not RAW_TRICKS & set(printed)
    assert max(map(len, printed.splitlines())) < 10_000

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        second_run, first_run = (r.dagster_run.run_id for r in instance.get_run_records(limit=2))
        records = instance.all_logs(second_run)
        first_run_records = instance.all_logs(first_run)
    events = [record.dagster_event for record in records if record.dagster_event is not None]
    (check,) = [
        data
        for event in events
        if isinstance(data := event.event_specific_data, AssetCheckEvaluation)
        and data.check_name == "order_status_accepted"
    ]
    description = str(check.description)
    assert not check.passed and len(description) < 1000, len(description)
    assert "(1,048,576 characters)" in description
    assert "\\x1b[31mred" in description and "\\r" in description
    assert "\\u202e" in description and "\\u200f" in description
    metadata_size = sum(len(str(entry.value)) for entry in check.metadata.values())
    assert metadata_size < 5000, metadata_size
    # No check's description or metadata, and no materialization's metadata, holds them raw.
    for event in events:
        if event.event_type in (
            DagsterEventType.ASSET_CHECK_EVALUATION,
            DagsterEventType.ASSET_MATERIALIZATION,
        ):
            reported = json.loads(serialize_value(event.event_specific_data))
            assert not RAW_TRICKS & set("".join(_strings(reported))), event.event_type
    # The event log of the run stays small whatever the values: no event carries a value whole.
    # The largest (the raw table's materialization, ~12 KB of schema and metadata) may grow by
    # the quoted values, each cut to 80 characters, not by a value.
    sizes = [len(serialize_value(record)) for record in records]
    largest_before = max(len(serialize_value(record)) for record in first_run_records)
    assert sum(sizes) < 200_000, sum(sizes)
    assert max(sizes) < largest_before + 2_000, (max(sizes), largest_before)
    # The table keeps the values byte-exact.
    assert query(
        isolated_environment,
        "SELECT length(order_status) FROM fulfillment.fulfillment_data WHERE id = 1",
    ) == [(1_048_576,)]
    assert query(
        isolated_environment, "SELECT order_status FROM fulfillment.fulfillment_data WHERE id = 2"
    ) == [(TERMINAL_TRICKS,)]


class NulApi:
    """30 orders; with `nul`, order 7's `note` holds a NUL character."""

    nul = False

    def page(self, offset: int, limit: int, params: dict[str, str]) -> dict:
        orders = [
            {"id": n, "customer_id": f"cus_{n}", "order_status": "shipped", "note": f"n{n}"}
            for n in range(1, 31)
        ]
        if self.nul:
            orders[6]["note"] = "before\x00after"
        return {"data": orders[offset : offset + limit], "total": len(orders)}


@pytest.mark.every_destination
def test_a_nul_character_loads_byte_exact_or_fails_naming_the_record_and_field(
    destination: str,
    monkeypatch: pytest.MonkeyPatch,
    instance: DagsterInstance,
    isolated_environment: Path,
) -> None:
    api = NulApi()
    with serve_fake_api(api, monkeypatch):
        assert materialize_all(instance, selection=RAW_ONLY).success
        before = query(
            isolated_environment, "SELECT id, note FROM fulfillment.fulfillment_data ORDER BY id"
        )
        api.nul = True
        result = materialize_all(instance, raise_on_error=False, selection=RAW_ONLY)

    note = query(isolated_environment, "SELECT note FROM fulfillment.fulfillment_data WHERE id = 7")
    if destination == "duckdb":
        assert result.success and note == [("before\x00after",)]
        return
    message = failure_message(result)
    assert "the page at offset 0 has record `id` 7 whose field `note` holds a NUL" in message
    assert "PostgreSQL" in message and TEST_API_KEY not in message
    assert query(
        isolated_environment, "SELECT id, note FROM fulfillment.fulfillment_data ORDER BY id"
    ) == (before)
