"""Pausing the cyclic garbage collector while a large acyclic structure is built.

Python runs its cyclic collector every few hundred new container objects, and a full pass
every so often scans everything alive. While years of records, rows or documents are made,
none of which hold reference cycles, those passes only rescan them: 10 to 15% of an export's
time (docs/performance.md). Reference counting still frees everything as usual.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """The cyclic collector off inside the block (as it was after it)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
