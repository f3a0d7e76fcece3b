"""What a demo API serves, in the words of its start line: the records now, what the change
options (`--added`, `--changed`, `--removed`) did to them, and the faults it injects."""

from __future__ import annotations

from collections.abc import Iterable

from fulfillment_assets.demo_api.data import Dataset
from fulfillment_assets.demo_api.options import DemoApiOptions

# Ids a start line lists; the rest are counted.
LISTED_IDS = 10


def served_summary(options: DemoApiOptions) -> str:
    """`1001 records: ids 1-1000 without 9 (removed), then 1001-1002 (added); 5, 17 changed;
    ...`, then the faults; a plain API is `1000 records`."""
    if options.endless:
        return "endless pages" + _faults(options)
    dataset = Dataset(options)
    changes = dataset.changes
    text = f"{dataset.served_total()} records"
    if changes.active:
        removed = sorted(i for i in changes.removed if 1 <= i <= options.records)
        text += f": ids 1-{options.records}" if options.records else ": no base records"
        if removed:
            text += f" without {_listed(removed)} (removed)"
        if changes.added:
            text += f", then {_id_range(changes.added)} (added)"
        if changes.changed:
            text += f"; {_listed(sorted(changes.changed))} changed"
        newer = " and ".join(
            kind for kind, ids in (("added", changes.added), ("changed", changes.changed)) if ids
        )
        if newer:
            text += (
                f"; the {newer} ones are newer than every other: what an incremental run fetches"
            )
    return text + _faults(options)


def _faults(options: DemoApiOptions) -> str:
    """The faults the API injects, each as a clause; empty when it injects none."""
    faults = []
    if options.fail_status is not None:
        pages = "every page"
        if options.fail_offsets is not None:
            pages = f"the pages at offsets {_listed(sorted(options.fail_offsets))}"
        answers = f"answers HTTP {options.fail_status}"
        if options.fail_times:
            answers += f" {options.fail_times} time(s), then its records"
        faults.append(f"{pages} {answers}")
    if options.malformed is not None:
        faults.append(
            f"the page at offset {options.malformed_offset} is malformed ({options.malformed})"
        )
    if not options.include_total:
        faults.append("pages carry no total")
    if options.max_limit != DemoApiOptions().max_limit:
        faults.append(f"pages capped at {options.max_limit} records")
    if options.latency_ms:
        faults.append(f"{options.latency_ms:g} ms a page")
    return "; " + "; ".join(faults) if faults else ""


def _listed(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:LISTED_IDS]))
    return f"{shown} and {len(ids) - LISTED_IDS} more" if len(ids) > LISTED_IDS else shown


def _id_range(ids: Iterable[int]) -> str:
    """Consecutive ids as `first-last` (added ids are consecutive but for removed ones)."""
    ordered = sorted(ids)
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return str(ordered[0]) if len(ordered) == 1 else f"{ordered[0]}-{ordered[-1]}"
    return _listed(ordered)
