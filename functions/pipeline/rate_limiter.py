"""Client-side request rate limits: NCBI E-utilities (3 or 10 requests/s) and the HealthOmics
control plane (~5 TPS for import and activation jobs).

A limiter spaces the calls of one process, i.e. of one Lambda execution environment. Across a
function the bound is (environments at once) x (rate per environment): the template caps the
environments with reserved concurrency, and each takes its share of the quota (docs/deploy.md,
"HealthOmics quotas")."""

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


_process_limiters: dict[tuple[str, float], RateLimiter] = {}
_process_limiters_lock = threading.Lock()


def process_rate_limiter(name: str, per_second: float) -> RateLimiter:
    """The one limiter for `name` at `per_second` in this process: warm invocations of a Lambda
    environment share it, so back-to-back invocations are spaced too."""
    with _process_limiters_lock:
        return _process_limiters.setdefault((name, per_second), RateLimiter(per_second))
