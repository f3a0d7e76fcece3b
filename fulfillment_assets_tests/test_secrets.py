"""The API key travels in the query string; it must never be written or printed anywhere.

Runs succeeding and failing scenarios with a recognisable key, then scans every file written
(DuckDB file, dlt's pipelines dir with its trace and load packages, Dagster's run and event
storage and compute logs) and everything printed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests
from dagster import instance_for_test

from fulfillment_assets.demo_api import DemoApiOptions, DemoApiServer
from fulfillment_assets_tests.helpers import TEST_API_KEY, failure_message, materialize_all

FAILING: dict[str, dict[str, Any]] = {
    "forbidden": {"forbidden": True},
    "persistent 500": {"fail_status": 500},
    "html page": {"malformed": "html", "malformed_offset": 100},
    "read timeout": {"hang_offset": 100, "hang_seconds": 3},
    "dropped mid-body": {"drop_connection_offset": 100},
    "500 echoing the key": {"fail_status": 500, "echo_key": True},
}


def _files_containing(root: Path, secret: bytes) -> list[str]:
    return [str(path) for path in root.rglob("*") if path.is_file() and secret in path.read_bytes()]


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_the_key_is_nowhere_after_succeeding_and_failing_runs(
    demo_api: DemoApiServer,
    tmp_path: Path,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__REQUEST_TIMEOUT", "0.5")
    messages = []
    (tmp_path / "dagster_home").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        demo_api.configure(DemoApiOptions(records=300, api_key=TEST_API_KEY))
        assert materialize_all(instance).success
        for options in FAILING.values():
            demo_api.configure(DemoApiOptions(records=300, api_key=TEST_API_KEY, **options))
            result = materialize_all(instance, raise_on_error=False)
            assert not result.success
            messages.append(failure_message(result))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed = sock.getsockname()[1]
        # urllib3 puts the full URL, query string included, in "Max retries exceeded with url".
        monkeypatch.setenv("SOURCES__FULFILLMENT__BASE_URL", f"http://127.0.0.1:{closed}")
        result = materialize_all(instance, raise_on_error=False)
        messages.append(failure_message(result))
        runs = instance.get_runs()
        run_configs = [str(run.run_config) for run in runs]
        event_text = [str(entry) for run in runs for entry in instance.all_logs(run.run_id)]

    secret = TEST_API_KEY.encode()
    assert any("api_key=***" in message for message in messages)
    assert not [m for m in messages if TEST_API_KEY in m]
    assert not [c for c in run_configs if TEST_API_KEY in c]
    assert not [e for e in event_text if TEST_API_KEY in e]
    # The scan covers dlt's trace (with the failed run's exception) and Dagster's storage.
    assert list((isolated_environment / "dlt_pipelines").rglob("trace.pickle"))
    assert list((tmp_path / "dagster_home").rglob("*.db"))
    assert _files_containing(tmp_path, secret) == []
    printed = capfd.readouterr()
    assert TEST_API_KEY not in printed.out and TEST_API_KEY not in printed.err


# A key with characters that URL-encode, and a password in the base URL: each form must be masked.
ODD_KEY = "sk_test ODD/ключ&=7d9c1e5b42"
BASE_URL_PASSWORD = "pw-FULFILLMENT-4c1d"


@pytest.mark.slow  # over 5 s: left out of the fast lane
def test_every_form_of_the_key_is_masked_whatever_the_api_echoes(
    tmp_path: Path,
    isolated_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SOURCES__FULFILLMENT__API_KEY", ODD_KEY)
    messages = []
    (tmp_path / "dagster_home").mkdir()
    with (
        DemoApiServer(DemoApiOptions(records=300, api_key=ODD_KEY, echo_key=True)) as api,
        instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance,
    ):
        host = api.url.removeprefix("http://")
        monkeypatch.setenv(
            "SOURCES__FULFILLMENT__BASE_URL", f"http://user:{BASE_URL_PASSWORD}@{host}"
        )
        assert materialize_all(instance).success
        # The API echoes the key in a 500's body, and the key it got in a 401's body.
        for options in ({"fail_status": 500}, {"api_key": "another-key"}):
            api.configure(**options)
            result = materialize_all(instance, raise_on_error=False)
            assert not result.success
            messages.append(failure_message(result))
        event_text = [str(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id)]

    assert "HTTP 500" in messages[0] and "HTTP 401" in messages[1]
    printed = capfd.readouterr()
    for secret in (ODD_KEY, quote(ODD_KEY, safe=""), quote_plus(ODD_KEY), BASE_URL_PASSWORD):
        assert not [m for m in messages if secret in m], secret
        assert not [e for e in event_text if secret in e], secret
        assert _files_containing(tmp_path, secret.encode()) == [], secret
        assert secret not in printed.out and secret not in printed.err, secret


def test_the_demo_api_cli_never_prints_its_key(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_KEY_FOR_TEST": TEST_API_KEY}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fulfillment_assets.demo_api",
            "--port",
            str(port),
            "--records",
            "10",
            "--api-key-env",
            "DEMO_KEY_FOR_TEST",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first_line = server.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first_line
        bad = requests.get(f"http://127.0.0.1:{port}/v1/fulfillment?api_key=wrong", timeout=5)
        good = requests.get(
            f"http://127.0.0.1:{port}/v1/fulfillment", params={"api_key": TEST_API_KEY}, timeout=5
        )
        assert (bad.status_code, good.status_code) == (401, 200)
        assert TEST_API_KEY not in bad.text + good.text
    finally:
        server.terminate()
        out, err = server.communicate(timeout=10)
    assert TEST_API_KEY not in first_line + out + err


def test_the_demo_api_refuses_a_non_loopback_host() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "fulfillment_assets.demo_api", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "loopback" in refused.stderr
