"""Waiting for something another thread or process does: how long it took, or a clear failure."""

from __future__ import annotations

import time
from collections.abc import Callable


def seconds_until(condition: Callable[[], bool], *, limit: float = 10.0, every: float = 0.01) -> float:
    """Seconds until `condition` holds (asked every `every` s); AssertionError after `limit` s."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            raise AssertionError(f"not seen after {limit} s")
        time.sleep(every)
    return time.monotonic() - started
