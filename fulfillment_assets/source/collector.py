"""Python's cyclic garbage collector, run less often while a walk parses pages.

A walk allocates millions of dicts and lists (every record of every JSON page), all freed by
reference counting, none of them in a cycle. The collector still counts them: with its default
threshold it runs a young-generation pass every 700 allocations, ~12 % of a full run's time
(`docs/benchmarks.md`). During the walk the threshold is raised; afterwards it is restored.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Allocations between two young-generation passes during a walk (Python's default: 700).
WALK_GC_THRESHOLD = 10_000


@contextmanager
def fewer_collections(threshold: int = WALK_GC_THRESHOLD) -> Iterator[None]:
    """Within the block the collector's young generation waits for `threshold` allocations."""
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], threshold), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
