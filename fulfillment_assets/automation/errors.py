"""How a failed step's error reads: Dagster's error with every cause, one walk over the chain.

Dagster wraps a step's own error (`DagsterExecutionStepExecutionError`, then dlt's
`PipelineStepFailed`, ...); the ingest step raises the project's message as `dagster.Failure`
on top of them (`ingest/failures.py`). The alerts and the demo job's summary read the chain here:
`readable_cause` is the one line that says what went wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# Errors that only say where another one happened: the cause is further down the chain.
WRAPPERS = {
    "DagsterExecutionStepExecutionError",
    "DagsterUserCodeExecutionError",
    "PipelineStepFailed",
    "ResourceExtractionError",
}
# `module.path.ClassName: ` at the start of a serialized error's message.
_QUALIFIED_CLASS = re.compile(r"^[\w.]+: ")


def error_chain(error: Any) -> Iterator[Any]:
    """A `SerializableErrorInfo` and each of its causes, outermost first."""
    while error is not None:
        yield error
        error = error.cause


def readable_cause(error: Any) -> str:
    """What went wrong, once: the outermost error of the chain that is not a wrapper (the
    project's `Failure` when it raised one), as its message without the module path; an error of
    another kind keeps its class name (`KeyError: 'x'`)."""
    chain = list(error_chain(error))
    if not chain:
        return "no error recorded"
    cause = next((e for e in chain if e.cls_name not in WRAPPERS), chain[-1])
    message = _QUALIFIED_CLASS.sub("", cause.message.strip(), count=1)
    if cause.cls_name == "Failure":
        return message
    return f"{cause.cls_name}: {message}"
