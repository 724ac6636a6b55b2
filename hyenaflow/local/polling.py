"""Waiting on what changes in the background: poll with a deadline, never sleep a fixed time.

Import jobs, training jobs and endpoints change state asynchronously, on AWS and in the local
emulation alike, so the demo and the tests wait for an outcome by asking for it again and again
until a deadline. A fixed sleep is either too short on a busy machine or wasted on a quiet one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T],
    what: str,
    timeout_s: float = 60.0,
    *,
    until: Callable[[T], Any] = bool,
    interval_s: float = 0.2,
    tick: Callable[[], None] | None = None,
) -> T:
    """Call `probe()` until `until(result)` holds (default: the result is truthy); return it.

    `tick()`, if given, runs before each probe (the demo prints new training-log lines there).
    Raises TimeoutError naming `what` and the last result once `timeout_s` has passed.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if tick is not None:
            tick()
        result = probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout_s:.0f}s waiting for {what} (last value: {result!r})"
            )
        time.sleep(interval_s)
