"""A bundled demo fulfillment REST API on loopback, for the job, tests and benchmarks."""

from __future__ import annotations

from fulfillment_assets.demo_api.app import RequestRecord, build_app
from fulfillment_assets.demo_api.data import (
    RECORD_KINDS,
    UNKNOWN_STATUS,
    Dataset,
    expected_counts,
    record_ids_with,
)
from fulfillment_assets.demo_api.options import DEMO_API_KEY, MALFORMED_KINDS, DemoApiOptions
from fulfillment_assets.demo_api.records import make_record
from fulfillment_assets.demo_api.server import DemoApiServer

__all__ = [
    "DEMO_API_KEY",
    "MALFORMED_KINDS",
    "RECORD_KINDS",
    "UNKNOWN_STATUS",
    "Dataset",
    "DemoApiOptions",
    "DemoApiServer",
    "RequestRecord",
    "build_app",
    "expected_counts",
    "make_record",
    "record_ids_with",
]
