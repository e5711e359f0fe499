"""Requests per API key: a token bucket each, refilled continuously (429 with Retry-After when empty)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimited(Exception):
    def __init__(self, key_name: str, retry_after: float) -> None:
        super().__init__(f"API key {key_name!r} is over its rate limit")
        self.key_name = key_name
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)  # a full minute's worth may arrive as a burst
        self.rate = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key name -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, key_name: str) -> None:
        """Spend one request of `key_name`'s budget, or raise RateLimited."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key_name, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key_name] = (tokens, now)
                raise RateLimited(key_name, math.ceil((1.0 - tokens) / self.rate))
            self._buckets[key_name] = (tokens - 1.0, now)
