"""The Lambdas' rate limiters on a clock that moves only when they sleep.

A limiter's spacing is then measured exactly and costs no waiting: back-to-back calls are the
worst case (no time passes between them but the limiter's own sleeps), and the virtual time at
which each request leaves shows the spacing the limiter enforces. Wall-clock spacing would prove
nothing on a busy machine (it only gets slower) and would make the tests wait.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import pytest


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def rate_limiters_on(clock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every limiter `pipeline.rate_limiter.process_rate_limiter` makes from now on runs on `clock`
    (the process's cached limiters are set aside for the test)."""
    from pipeline import rate_limiter

    monkeypatch.setattr(rate_limiter, "_process_limiters", {})
    monkeypatch.setattr(
        rate_limiter,
        "RateLimiter",
        functools.partial(rate_limiter.RateLimiter, clock=clock, sleep=clock.sleep),
    )


def record_requests(client: Any, clock: VirtualClock) -> list[tuple[str, float]]:
    """(operation, virtual time) of every request `client` sends from now on, retries included
    (botocore's before-send event: the request is signed and about to go on the wire)."""
    sent: list[tuple[str, float]] = []

    def record(event_name: str, **_: Any) -> None:  # observes only: returns no response
        sent.append((event_name.rsplit(".", 1)[-1], clock.now))

    client.meta.events.register(f"before-send.{client.meta.service_model.endpoint_prefix}", record)
    return sent
