"""A failed load as the run page, the event log and the alerts show it: the cause, once, first.

A failure in the source reaches the ingest step wrapped by dlt (`PipelineStepFailed`, then
`ResourceExtractionError`) and would be wrapped again by Dagster
(`DagsterExecutionStepExecutionError`): the project's own message (the cause, the page, the host,
the setting to change) sat under two wrappers and a stack. Raised as `dagster.Failure`, it is
the step's error as is; the wrappers and their stacks stay below it as its cause.
"""

from __future__ import annotations

from typing import Any

from dagster import Failure, MetadataValue
from dlt.pipeline.exceptions import PipelineStepFailed

from fulfillment_assets.display import causes
from fulfillment_assets.masking import KeyMask
from fulfillment_assets.source.http import FulfillmentApiError
from fulfillment_assets.warehouse.locks import LockWaitTimeout

# Errors whose message is the project's own, written for the person who reads the run.
OWN_ERRORS = (FulfillmentApiError, LockWaitTimeout, Failure)


def readable_failure(error: BaseException) -> Failure:
    """The failure to raise for `error`: the project's message if one is in its chain, else the
    innermost error with the dlt step it failed in; the API key masked either way."""
    chain = list(causes(error))
    own = next((cause for cause in chain if isinstance(cause, OWN_ERRORS)), None)
    step = next((cause.step for cause in chain if isinstance(cause, PipelineStepFailed)), None)
    mask = KeyMask.configured()
    if isinstance(own, Failure):
        description = own.description or str(own)
    elif own is not None:
        description = str(own)
    else:
        innermost = chain[-1]
        where = f"dlt's {step} step failed: " if step else ""
        description = f"{where}{type(innermost).__name__}: {innermost}"
    metadata: dict[str, Any] = {"error": MetadataValue.text(type(own or chain[-1]).__name__)}
    if step:
        metadata["dlt_step"] = MetadataValue.text(str(step))
    if isinstance(own, Failure):
        metadata = {**metadata, **own.metadata}
    return Failure(description=mask(description), metadata=metadata)
