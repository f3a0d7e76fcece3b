"""What the demo API serves and which faults it injects: `DemoApiOptions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

DEMO_API_KEY = "demo-key"

MalformedKind = Literal[
    "html",
    "truncated",
    "no_data",
    "data_not_list",
    "record_not_object",
    "record_without_id",
    "total_not_number",
    "total_changes",
    "empty_body",
]
MALFORMED_KINDS: tuple[str, ...] = get_args(MalformedKind)

_ID_SET_FIELDS = (
    "missing_customer_id_ids",
    "missing_order_status_ids",
    "unknown_status_ids",
    "duplicate_ids",
    "customer_id_as_int_ids",
    "changed_ids",
    "removed_ids",
)


@dataclass(frozen=True)
class DemoApiOptions:
    """What the server serves and which faults it injects; defaults mean "no fault"."""

    records: int = 1000
    seed: int = 0
    data_version: int = 0
    # repr=False: options get printed and logged, the key must not be.
    api_key: str = field(default=DEMO_API_KEY, repr=False)
    forbidden: bool = False
    max_limit: int = 1000
    include_total: bool = True
    endless: bool = False
    latency_ms: float = 0
    fail_status: int | None = None
    fail_times: int | None = None
    fail_offsets: frozenset[int] | None = None
    # Retry-After sent with 429/503 faults: as given, or `date+N` for an HTTP-date N s ahead.
    retry_after: str | None = None
    malformed: MalformedKind | None = None
    malformed_offset: int = 0
    drop_connection_offset: int | None = None
    hang_offset: int | None = None
    hang_seconds: float = 30
    # The page at this offset sends its body a few bytes at a time, faults.DRIP_INTERVAL apart.
    drip_offset: int | None = None
    # The `total` pages report, when it differs from the records served (an API that lies).
    reported_total: int | None = None
    # Error bodies (401, injected faults) echo the key the client sent, as careless APIs do.
    echo_key: bool = False
    null_customer_id_fraction: float = 0.02
    null_order_status_fraction: float = 0.01
    missing_customer_id_ids: frozenset[int] = frozenset()
    missing_order_status_ids: frozenset[int] = frozenset()
    unknown_status_ids: frozenset[int] = frozenset()
    duplicate_ids: frozenset[int] = frozenset()
    # The version the second copies of duplicate_ids are served with (default: data_version).
    duplicate_version: int | None = None
    customer_id_as_int_ids: frozenset[int] = frozenset()
    extra_fields: dict[str, object] = field(default_factory=dict)
    # Incremental sync: the query parameter that filters to `updated_at >= value` (None: the
    # seed's API, which ignores it), and data that changed since the first run (changes.py).
    updated_since_param: str | None = "updated_since"
    changed_ids: frozenset[int] = frozenset()  # updated after every base record
    change_generation: int = 1  # later generations are newer still
    added_records: int = 0  # ids N+1..N+k, as new as the changed ones
    removed_ids: frozenset[int] = frozenset()  # no longer served

    def __post_init__(self) -> None:
        # Accept any iterable of ids (lists, sets) so configure() calls stay terse.
        for name in _ID_SET_FIELDS:
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        if self.fail_offsets is not None:
            object.__setattr__(self, "fail_offsets", frozenset(self.fail_offsets))
        object.__setattr__(self, "extra_fields", dict(self.extra_fields))
        if self.records < 0 or self.max_limit < 1 or self.added_records < 0:
            raise ValueError("records and added_records must be >= 0, max_limit >= 1")
        for name in ("null_customer_id_fraction", "null_order_status_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.malformed is not None and self.malformed not in MALFORMED_KINDS:
            raise ValueError(f"malformed must be one of {MALFORMED_KINDS}")
        if self.change_generation < 1:
            raise ValueError("change_generation must be >= 1")
        if self.fail_status is not None and not 100 <= self.fail_status <= 599:
            raise ValueError("fail_status must be an HTTP status code")
