"""Every value the API sent lands typed where a user looks for it, or a check names where it
went: numeric text, timestamps in every ISO-8601 form and epoch numbers, a field whose shape
varies by record; against a small fake API of the test's own on loopback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dagster import DagsterInstance

from fulfillment_assets.warehouse.resource import Warehouse
from fulfillment_assets_tests.fake_api import RecordsApi, serve_fake_api
from fulfillment_assets_tests.helpers import materialize_all

Records = list[dict[str, Any]]


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Records], None]]:
    """A loopback API serving the records it is given in offset pages, with `total`."""
    api = RecordsApi()
    with serve_fake_api(api, monkeypatch):
        yield api.serve


def _order(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": number,
        "customer_id": f"C{number % 50:05d}",
        "order_status": "shipped",
        "created_at": "2026-10-24T22:20:10Z",
        "updated_at": "2026-10-27T02:47:58Z",
        "amount": 10.25 + number,
        "currency": "USD",
        **fields,
    }


def _checks(result: Any) -> dict[str, Any]:
    return {
        evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()
    }


@pytest.mark.every_destination
def test_amounts_sent_as_text_land_typed_and_the_summary_adds_up(
    fake_api: Callable[[Records], None], instance: DagsterInstance
) -> None:
    orders = [_order(n) for n in range(1, 301)]
    for order in orders[::3]:
        order["amount"] = f"{order['amount']:.2f}"  # "12.25": a third of them as text
    api_sum = sum(float(order["amount"]) for order in orders)
    fake_api(orders)

    result = materialize_all(instance, raise_on_error=False)

    assert result.success
    ((typed, nulls),) = Warehouse().query(
        "SELECT count(amount), count(*) - count(amount) FROM fulfillment.fulfillment_data"
    )
    assert (typed, nulls) == (300, 0)
    ((total,),) = Warehouse().query(
        "SELECT sum(amount_total) FROM fulfillment.orders_daily_summary"
    )
    assert total == pytest.approx(api_sum)
    raw = result.asset_materializations_for_node("fulfillment_ingest")[0]
    assert raw.metadata["values_read_as_type"].value == {"amount": 100}
    assert _checks(result)["values_of_their_column_type"].passed


TIMESTAMP_FORMS = {
    "2026-10-31T16:00:00Z": "2026-10-31 16:00:00",
    "2026-10-31T16:00:00": "2026-10-31 16:00:00",  # no offset: UTC
    "2026-10-31 16:00:00": "2026-10-31 16:00:00",  # a space for T
    "2026-10-31T16:00:00.0000000": "2026-10-31 16:00:00",  # ShipStation's 7 digits
    "2026-10-31T16:00:00.123456789+02:00": "2026-10-31 14:00:00.123456",  # nanoseconds
    "2026-10-31T18:00:00+0200": "2026-10-31 16:00:00",
    1793462400: "2026-10-31 16:00:00",  # epoch seconds
    1793462400000: "2026-10-31 16:00:00",  # epoch milliseconds
    1793462400000000: "2026-10-31 16:00:00",  # epoch microseconds
    1793462400000000000: "2026-10-31 16:00:00",  # epoch nanoseconds
}


@pytest.mark.every_destination
def test_timestamps_in_every_iso_form_and_epoch_numbers_land_typed(
    fake_api: Callable[[Records], None], instance: DagsterInstance
) -> None:
    forms = list(TIMESTAMP_FORMS)
    orders = [
        _order(n, created_at=forms[n % len(forms)], updated_at=forms[(n + 3) % len(forms)])
        for n in range(1, 161)
    ]
    fake_api(orders)

    result = materialize_all(instance, raise_on_error=False)

    assert result.success
    rows = Warehouse().query(
        "SELECT id, strftime(created_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S.%f'), "
        "strftime(updated_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S.%f') "
        "FROM fulfillment.fulfillment_data ORDER BY id",
    )
    assert len(rows) == 160
    for row_id, created, updated in rows:
        pairs = ((created, forms[row_id % len(forms)]), (updated, forms[(row_id + 3) % len(forms)]))
        for stamp, form in pairs:
            expected = dt.datetime.fromisoformat(TIMESTAMP_FORMS[form])
            assert dt.datetime.fromisoformat(stamp) == expected, (row_id, form)
    columns = {
        name
        for (name,) in Warehouse().query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'fulfillment_data'",
        )
    }
    assert not {name for name in columns if "__v_" in name}
    ((days,),) = Warehouse().query(
        "SELECT count(*) FROM fulfillment.orders_daily_summary WHERE order_date IS NULL"
    )
    assert days == 0


def test_a_time_without_offset_is_read_in_the_configured_api_timezone(
    fake_api: Callable[[Records], None], instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__API_TIMEZONE", "America/New_York")
    fake_api(
        [_order(1, created_at="2026-10-31T12:00:00.0000000", updated_at="2026-10-31T12:00:00Z")]
    )

    assert materialize_all(instance, raise_on_error=False).success

    ((created, updated),) = Warehouse().query(
        "SELECT strftime(created_at AT TIME ZONE 'UTC', '%H:%M'), "
        "strftime(updated_at AT TIME ZONE 'UTC', '%H:%M') FROM fulfillment.fulfillment_data",
    )
    assert (created, updated) == ("16:00", "12:00")  # EDT is UTC-4; an offset wins


@pytest.mark.every_destination
def test_values_that_are_no_timestamp_or_number_stay_in_variant_columns_named_by_a_check(
    fake_api: Callable[[Records], None], instance: DagsterInstance
) -> None:
    orders = [_order(n) for n in range(1, 201)]
    for order in orders[1::20]:
        order["created_at"] = "next Tuesday"  # 10: text that is no timestamp
    for order in orders[2::25]:
        order["amount"] = "1,234.50"  # 8: a thousands separator
    for order in orders[3::50]:
        order["amount"] = "nan"  # 4
    typed_sum = sum(order["amount"] for order in orders if isinstance(order["amount"], float))
    fake_api(orders)

    result = materialize_all(instance, raise_on_error=False)

    assert result.success
    ((created, created_text, amounts, amount_text),) = Warehouse().query(
        "SELECT count(created_at), count(created_at__v_text), count(amount), "
        "count(amount__v_text) FROM fulfillment.fulfillment_data"
    )
    assert (created, created_text, amounts, amount_text) == (190, 10, 188, 12)
    check = _checks(result)["values_of_their_column_type"]
    assert not check.passed and check.severity.value == "WARN"
    assert "created_at: 10 values of type text kept in `created_at__v_text`" in check.description
    assert "amount: 12 values of type text kept in `amount__v_text`" in check.description
    ((total,),) = Warehouse().query(
        "SELECT sum(amount_total) FROM fulfillment.orders_daily_summary"
    )
    assert total == pytest.approx(typed_sum)  # only the 12 amounts that are no number are left out


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_first_load_whose_first_record_has_the_odd_shape_types_the_column_by_most_values(
    fake_api: Callable[[Records], None], instance: DagsterInstance
) -> None:
    orders = [_order(n, tags=["gift", "rush"]) for n in range(1, 301)]
    for order in orders[::10]:
        order["tags"] = "gift,rush"  # 30 of 300 as a comma string, record #0 among them
    fake_api(orders)

    result = materialize_all(instance, raise_on_error=False)

    assert result.success
    ((data_type,),) = Warehouse().query(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = 'fulfillment' AND table_name = 'fulfillment_data' "
        "AND column_name = 'tags'",
    )
    assert str(data_type) == "JSON"  # most of the first batch's values, not record #0's
    ((lists, texts),) = Warehouse().query(
        "SELECT count(tags), count(tags__v_text) FROM fulfillment.fulfillment_data"
    )
    assert (lists, texts) == (270, 30)
    check = _checks(result)["values_of_their_column_type"]
    assert "tags: 30 values of type text kept in `tags__v_text`" in check.description


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_field_whose_shape_varies_keeps_one_type_across_runs_and_a_check_names_the_rest(
    fake_api: Callable[[Records], None], instance: DagsterInstance
) -> None:
    def orders(first_as_text: bool) -> Records:
        batch = [_order(n, tags=["gift", "rush"]) for n in range(1, 301)]
        for order in batch[::10] if first_as_text else batch[5::10]:
            order["tags"] = "gift,rush"  # 30 of 300 as a comma string
        return batch

    def tags_type() -> str:
        ((data_type,),) = Warehouse().query(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = 'fulfillment' AND table_name = 'fulfillment_data' "
            "AND column_name = 'tags'",
        )
        return str(data_type)

    fake_api(orders(first_as_text=False))
    first = materialize_all(instance, raise_on_error=False)
    assert first.success
    first_type = tags_type()
    fake_api(orders(first_as_text=True))  # the first record now has the text form
    second = materialize_all(instance, raise_on_error=False)
    assert second.success

    assert tags_type() == first_type == "JSON"
    ((lists, texts),) = Warehouse().query(
        "SELECT count(tags), count(tags__v_text) FROM fulfillment.fulfillment_data"
    )
    assert (lists, texts) == (270, 30)
    check = _checks(second)["values_of_their_column_type"]
    assert not check.passed and check.severity.value == "WARN"
    assert "tags: 30 values of type text kept in `tags__v_text`" in check.description


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_a_shipstation_style_timestamp_is_an_incremental_cursor(
    fake_api: Callable[[Records], None], instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__UPDATED_SINCE_PARAM", "modified_since")
    orders = [_order(n, updated_at=f"2026-10-31T16:{n:02d}:00.0000000") for n in range(1, 51)]
    fake_api(orders)
    first = materialize_all(instance, raise_on_error=False)
    orders[0]["updated_at"] = "2026-10-31T17:30:00.0000000"  # one order changes
    second = materialize_all(instance, raise_on_error=False)

    assert first.success and second.success
    raw = second.asset_materializations_for_node("fulfillment_ingest")[0]
    assert raw.metadata["sync_mode"].value == "incremental"
    assert raw.metadata["new_cursor"].value == "2026-10-31T17:30:00Z"
    ((rows, latest),) = Warehouse().query(
        "SELECT count(*), strftime(max(updated_at) AT TIME ZONE 'UTC', '%H:%M') "
        "FROM fulfillment.fulfillment_data",
    )
    assert (rows, latest) == (50, "17:30")
