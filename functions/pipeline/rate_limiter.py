"""Client-side request rate limits: NCBI E-utilities (3 or 10 requests/s) and the HealthOmics
control plane (~5 TPS for import and activation jobs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """At most `per_second` request starts per second (spaced evenly, thread-safe)."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second
        self._clock, self._sleep = clock, sleep
        self._next_start = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next_start:
                self._sleep(self._next_start - now)
                now = self._next_start
            self._next_start = now + self.interval
