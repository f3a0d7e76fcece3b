"""The bundled demo API on its own, over real HTTP on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from fulfillment_assets.demo_api import (
    DEMO_API_KEY,
    DemoApiOptions,
    DemoApiServer,
    expected_counts,
    make_record,
    record_ids_with,
)
from fulfillment_assets.demo_api.summary import served_summary
from fulfillment_assets.settings import ORDER_STATUSES

# The options conftest's `api` fixture starts this module's demo API with, and resets it to.
BASE = DemoApiOptions(records=250)
PATH = "/v1/fulfillment"
REPO = Path(__file__).resolve().parents[1]


def get(
    api: DemoApiServer,
    *,
    key: str | None = DEMO_API_KEY,
    session: requests.Session | None = None,
    **params: Any,
) -> requests.Response:
    if key is not None:
        params["api_key"] = key
    return (session or requests).get(api.url + PATH, params=params, timeout=5)


def fetch_all(api: DemoApiServer, limit: int = 100) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        body = get(api, offset=len(rows), limit=limit).json()
        rows.extend(body["data"])
        if len(body["data"]) < limit:
            return rows


def test_healthz_needs_no_key(api: DemoApiServer) -> None:
    r = requests.get(api.url + "/healthz", timeout=5)
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert api.requests == []  # only /v1/fulfillment is logged


def test_pagination_total_and_short_last_page(api: DemoApiServer) -> None:
    pages = [get(api, offset=o, limit=100).json() for o in (0, 100, 200, 300)]
    assert [len(p["data"]) for p in pages] == [100, 100, 50, 0]
    assert all(p["total"] == 250 for p in pages)
    assert [(p["offset"], p["limit"]) for p in pages] == [(o, 100) for o in (0, 100, 200, 300)]
    ids = [rec["id"] for p in pages for rec in p["data"]]
    assert ids == list(range(1, 251))
    assert get(api, offset=7, limit=3).json()["data"][0]["id"] == 8


def test_limit_default_and_cap(api: DemoApiServer) -> None:
    body = get(api).json()
    assert (body["offset"], body["limit"], len(body["data"])) == (0, 100, 100)
    api.configure(max_limit=30)
    body = get(api, limit=1000).json()
    assert (body["limit"], len(body["data"])) == (30, 30)


@pytest.mark.parametrize(
    "params", [{"offset": -1}, {"limit": -5}, {"offset": "abc"}, {"limit": "1.5"}, {"offset": ""}]
)
def test_invalid_offset_or_limit_is_400(api: DemoApiServer, params: dict[str, Any]) -> None:
    r = get(api, **params)
    assert r.status_code == 400
    assert "error" in r.json()


def test_auth(api: DemoApiServer) -> None:
    for key in (None, "wrong", ""):
        r = get(api, key=key)
        assert (r.status_code, r.json()) == (401, {"error": "invalid or missing api_key"})
    api.configure(forbidden=True)
    assert get(api).status_code == 403
    assert get(api, key="wrong").status_code == 401


def test_unknown_path_and_method_are_json(api: DemoApiServer) -> None:
    r = requests.get(api.url + "/v2/nope", timeout=5)
    assert (r.status_code, r.headers["content-type"]) == (404, "application/json")
    assert r.json() == {"error": "not found"}
    assert requests.post(api.url + PATH, timeout=5).status_code == 405


def test_record_shape() -> None:
    statuses = set()
    for record_id in range(1, 2001):
        rec = make_record(record_id)
        assert list(rec) == [
            "id",
            "customer_id",
            "order_status",
            "created_at",
            "updated_at",
            "amount",
            "currency",
            "items_count",
            "shipment",
        ]
        assert rec["id"] == record_id and rec["order_status"] in ORDER_STATUSES
        assert "2026-10-02T00:00:00Z" <= rec["created_at"] < "2026-11-01T00:00:00Z"
        assert rec["updated_at"] >= rec["created_at"]
        assert rec["customer_id"].startswith("C") and len(rec["customer_id"]) == 6
        assert isinstance(rec["amount"], float) and round(rec["amount"], 2) == rec["amount"]
        shipped = rec["order_status"] in ("shipped", "delivered", "returned")
        assert (rec["shipment"]["shipped_at"] is not None) == shipped
        statuses.add(rec["order_status"])
    assert statuses == set(ORDER_STATUSES)


def test_version_changes_updated_at_and_amount() -> None:
    for record_id in (1, 99, 12345):
        old, new = make_record(record_id), make_record(record_id, version=1)
        assert new["updated_at"] > old["updated_at"] and new["amount"] != old["amount"]
        assert {k: v for k, v in new.items() if k not in ("updated_at", "amount")} == {
            k: v for k, v in old.items() if k not in ("updated_at", "amount")
        }


def test_same_options_same_bytes(api: DemoApiServer) -> None:
    with DemoApiServer(BASE, port=0) as other:
        for offset in (0, 100, 200):
            assert get(api, offset=offset).content == get(other, offset=offset).content
    first_page = get(api).content
    api.configure(seed=1)
    assert get(api).content != first_page


def test_default_null_fractions_are_exact(api: DemoApiServer) -> None:
    api.configure(records=1000)
    rows = fetch_all(api, limit=1000)
    assert sum(r["customer_id"] is None for r in rows) == 20
    assert sum(r["order_status"] is None for r in rows) == 10
    assert {r["id"] for r in rows if r["customer_id"] is None} == record_ids_with(
        "null_customer_id", api.options
    )


def test_data_quality_knobs_exact_counts(api: DemoApiServer) -> None:
    options = api.configure(
        records=500,
        null_customer_id_fraction=0.1,
        null_order_status_fraction=0.05,
        missing_customer_id_ids={1, 2, 3},
        missing_order_status_ids={4, 5},
        unknown_status_ids={5, 6, 7, 8},
        customer_id_as_int_ids=[9, 10, 3],
        duplicate_ids={10, 20, 30, 999},
        extra_fields={"warehouse": "W1"},
    )
    rows = fetch_all(api, limit=70)
    counts = expected_counts(options)
    assert len(rows) == counts["rows"] == 503
    observed = {
        "missing_customer_id": sum("customer_id" not in r for r in rows),
        "null_customer_id": sum("customer_id" in r and r["customer_id"] is None for r in rows),
        "customer_id_as_int": sum(isinstance(r.get("customer_id"), int) for r in rows),
        "missing_order_status": sum("order_status" not in r for r in rows),
        "null_order_status": sum("order_status" in r and r["order_status"] is None for r in rows),
        "unknown_status": sum(r.get("order_status") == "teleported" for r in rows),
    }
    assert observed == {kind: counts[kind] for kind in observed}
    assert counts["missing_customer_id"] == 3 and counts["unknown_status"] == 3
    assert counts["customer_id_as_int"] == 3  # 9 and 10, plus the duplicate copy of 10
    assert {r["id"] for r in rows if "customer_id" not in r} == {1, 2, 3}
    assert all(r["warehouse"] == "W1" for r in rows)
    # Duplicates: appended after id N in id order, identical content.
    assert [r["id"] for r in rows[500:]] == [10, 20, 30]
    assert rows[500:] == [rows[9], rows[19], rows[29]]
    assert get(api).json()["total"] == 503


@pytest.mark.parametrize(
    "kind",
    [
        "html",
        "truncated",
        "no_data",
        "data_not_list",
        "record_not_object",
        "record_without_id",
        "total_not_number",
        "total_changes",
        "empty_body",
    ],
)
def test_malformed(api: DemoApiServer, kind: str) -> None:
    api.configure(malformed=kind, malformed_offset=100)
    good = get(api, offset=0)
    assert good.json()["total"] == 250 and len(good.json()["data"]) == 100
    r = get(api, offset=100)
    assert r.status_code == 200
    if kind == "html":
        assert r.headers["content-type"].startswith("text/html")
        assert r.text.lstrip().startswith("<html")
    elif kind in ("truncated", "empty_body"):
        assert r.headers["content-type"] == "application/json"
        assert r.content.startswith(b'{"data":[') if kind == "truncated" else r.content == b""
        with pytest.raises(ValueError):
            r.json()
    else:
        body = r.json()
        if kind == "no_data":
            assert "data" not in body and body["total"] == 250
        elif kind == "data_not_list":
            assert isinstance(body["data"], dict)
        elif kind == "record_not_object":
            assert isinstance(body["data"][0], str) and len(body["data"]) == 100
        elif kind == "record_without_id":
            assert "id" not in body["data"][0] and all("id" in rec for rec in body["data"][1:])
        elif kind == "total_not_number":
            assert body["total"] == "many"
        elif kind == "total_changes":
            assert body["total"] == 300 and get(api, offset=200).json()["total"] == 300


def test_fail_times_burst_then_recover(api: DemoApiServer) -> None:
    api.configure(fail_status=503, fail_times=2, fail_offsets={100})
    assert get(api, offset=0).status_code == 200
    assert [get(api, offset=100).status_code for _ in range(4)] == [503, 503, 200, 200]
    # Every matching offset gets its own burst; configure() resets the counters.
    api.configure(fail_offsets=None)
    assert [get(api, offset=200).status_code for _ in range(3)] == [503, 503, 200]
    assert [get(api, offset=0).status_code for _ in range(3)] == [503, 503, 200]


def test_persistent_failure(api: DemoApiServer) -> None:
    api.configure(fail_status=500)
    responses = [get(api, offset=o) for o in (0, 0, 0, 100, 100)]
    assert {r.status_code for r in responses} == {500}
    assert responses[0].json() == {"error": "injected fault"}
    assert "Retry-After" not in responses[0].headers


@pytest.mark.parametrize(
    ("status", "value", "sent"),
    [(429, "1", True), (503, "Wed, 21 Oct 2026 07:28:00 GMT", True), (500, "1", False)],
)
def test_retry_after(api: DemoApiServer, status: int, value: str, sent: bool) -> None:
    api.configure(fail_status=status, retry_after=value)
    r = get(api)
    assert r.status_code == status
    assert r.headers.get("Retry-After") == (value if sent else None)


def test_drop_connection_mid_body(api: DemoApiServer) -> None:
    api.configure(drop_connection_offset=100)
    with requests.Session() as session:
        assert get(api, offset=0, session=session).status_code == 200
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            get(api, offset=100, session=session)
        # The server survives and the session reconnects.
        assert get(api, offset=0, session=session).status_code == 200


def test_hang_offset_read_timeout(api: DemoApiServer) -> None:
    api.configure(hang_offset=100, hang_seconds=20)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(
            api.url + PATH, params={"api_key": DEMO_API_KEY, "offset": "100"}, timeout=(2, 0.3)
        )
    assert time.monotonic() - started < 2
    assert get(api, offset=0).status_code == 200


def test_latency(api: DemoApiServer) -> None:
    api.configure(latency_ms=150)
    started = time.monotonic()
    assert get(api).status_code == 200
    assert time.monotonic() - started >= 0.15


def test_request_log(api: DemoApiServer) -> None:
    get(api, offset=0, limit=10)
    get(api, key="wrong", offset=10)
    get(api, offset="x")
    get(api, limit=5000)
    log = api.requests
    assert [(r.offset, r.limit, r.status) for r in log] == [
        (0, 10, 200),
        (10, 100, 401),
        (None, 100, 400),
        (0, 5000, 200),
    ]
    assert [r.at for r in log] == sorted(r.at for r in log)
    log.clear()  # a copy: the server's log is untouched
    assert len(api.requests) == 4
    api.clear_requests()
    assert api.requests == []


def test_configure_at_runtime(api: DemoApiServer) -> None:
    new = api.configure(records=10, include_total=False)
    assert api.options == new and new.records == 10
    body = get(api).json()
    assert len(body["data"]) == 10 and "total" not in body
    assert api.configure(DemoApiOptions(records=3)).include_total is True
    assert get(api).json()["total"] == 3
    with pytest.raises(ValueError):
        api.configure(malformed="bogus")
    assert api.options.records == 3


def test_endless(api: DemoApiServer) -> None:
    api.configure(endless=True)
    for offset in (0, 250, 1_000_000):
        body = get(api, offset=offset, limit=100).json()
        assert "total" not in body
        assert [r["id"] for r in body["data"]] == list(range(offset + 1, offset + 101))


def test_api_key_never_echoed(api: DemoApiServer) -> None:
    secret = "sk_demo_SECRET_0f3a9c"
    api.configure(api_key=secret)
    assert secret not in repr(api.options)
    responses = [
        get(api, key=secret),
        get(api, key=secret + "x"),
        get(api, key=secret, offset=-1),
        requests.get(f"{api.url}/{secret}?api_key={secret}", timeout=5),
    ]
    for change in (
        {"forbidden": True},
        {"fail_status": 429, "retry_after": "1"},
        {"malformed": "html", "malformed_offset": 0},
        {"malformed": "no_data", "malformed_offset": 0},
    ):
        api.configure(api_key=secret, **change)
        responses.append(get(api, key=secret))
    assert len({r.status_code for r in responses}) >= 5
    for r in responses:
        assert secret not in r.text
        assert all(secret not in f"{k}: {v}" for k, v in r.headers.items())
    assert all(secret not in repr(record) for record in api.requests)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fulfillment_assets.demo_api", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_serves_until_sigint_without_printing_the_key() -> None:
    secret = "sk_cli_SECRET_77e1"
    proc = _cli(
        "--port", "0", "--records", "42", "--api-key-env", "DEMO_KEY_FOR_TEST",
        env={"DEMO_KEY_FOR_TEST": secret},
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("demo fulfillment API on http://127.0.0.1:")
        assert line.rstrip().endswith("serving 42 records")
        url = line.split()[4]
        good = requests.get(url + PATH, params={"api_key": secret}, timeout=5)
        assert good.json()["total"] == 42
        default_key = requests.get(url + PATH, params={"api_key": DEMO_API_KEY}, timeout=5)
        assert default_key.status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert secret not in line + out + err


def test_cli_start_line_says_what_it_serves_after_changes_and_faults() -> None:
    proc = _cli(
        "--port", "0", "--records", "1000", "--changed", "5,17", "--added", "2",
        "--removed", "9", "--fail-status", "503", "--fail-times", "1",
    )  # fmt: skip
    try:
        line = proc.stdout.readline().rstrip()  # type: ignore[union-attr]
        url = line.split()[4]
        # Each page fails once (503), then answers: the retry sees what the line says.
        requests.get(url + PATH, params={"api_key": DEMO_API_KEY}, timeout=5)
        total = requests.get(url + PATH, params={"api_key": DEMO_API_KEY}, timeout=5).json()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)

    assert line.endswith(
        "serving 1001 records: ids 1-1000 without 9 (removed), then 1001-1002 (added); 5, 17 "
        "changed; the added and changed ones are newer than every other: what an incremental "
        "run fetches; every page answers HTTP 503 1 time(s), then its records"
    ), line
    assert total["total"] == 1001


def test_the_start_line_names_every_fault_injected() -> None:
    options = DemoApiOptions(
        records=300, fail_status=500, include_total=False, max_limit=50, latency_ms=20
    )

    assert served_summary(options) == (
        "300 records; every page answers HTTP 500; pages carry no total; pages capped at 50 "
        "records; 20 ms a page"
    )
    assert served_summary(DemoApiOptions(records=42)) == "42 records"
    assert served_summary(DemoApiOptions(endless=True)) == "endless pages"


def test_cli_refuses_non_loopback_host() -> None:
    proc = _cli("--host", "0.0.0.0", "--port", "0")
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2 and "--allow-non-loopback" in err and out == ""


def _measure(seconds: float = 5.0) -> None:
    """Sequential requests/s of one requests.Session on 100-record pages."""
    with DemoApiServer(DemoApiOptions(records=1_000_000), port=0) as api, requests.Session() as s:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            params: dict[str, str | int] = {
                "api_key": DEMO_API_KEY,
                "offset": n * 100,
                "limit": 100,
            }
            s.get(api.url + PATH, params=params, timeout=5).json()
            n += 1
        rate = n / (time.perf_counter() - started)
        print(f"{rate:.0f} requests/s, {rate * 100:.0f} records/s (100-record pages)")


if __name__ == "__main__":
    _measure()
