"""How a failed step's error reads: Dagster's error with every cause, one walk over the chain.

Dagster wraps a step's own error (`DagsterExecutionStepExecutionError`, then dlt's
`PipelineStepFailed`, ...); the project's message is a cause further down. The alerts and the
demo job's summary read the chain here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Dagster's error for a blocking check that failed with ERROR (its class is not public API).
CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"


def error_chain(error: Any) -> Iterator[Any]:
    """A `SerializableErrorInfo` and each of its causes, outermost first."""
    while error is not None:
        yield error
        error = error.cause


def is_check_failure(error: Any) -> bool:
    """Whether a step failed because a blocking check failed with ERROR (reported per check)."""
    return error is not None and error.cls_name == CHECK_FAILED_ERROR
