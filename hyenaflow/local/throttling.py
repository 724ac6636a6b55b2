"""Test hook: answer the next N calls of an operation with the service's throttling error.

A real account throttles under load (HealthOmics' control plane allows about 5 TPS, SageMaker
limits each API's rate); the local emulations never do on their own. Tests that prove the
clients' retries ask for it:

    aws.inject_throttling("omics", "StartReadSetImportJob", times=2)

The answer is the one botocore's models describe, so the client's real retry logic handles it:
HealthOmics' `ThrottlingException` shape (HTTP 429, `retryable: {throttling: true}` in the omics
model) and, for SageMaker, whose model has no throttling shape, the `ThrottlingException` code
on HTTP 400 that botocore's standard retry mode lists among its throttling error codes
(botocore/retries/standard.py). Only operations the emulations answer themselves or hand to moto
through them (omics, sagemaker) can be throttled.
"""

from __future__ import annotations

import threading

THROTTLED_SERVICES = ("omics", "sagemaker")
THROTTLING_MESSAGE = "Rate exceeded"


class ThrottlingInjection:
    """How many of the next calls of each (service, operation) are refused as throttled."""

    def __init__(self) -> None:
        self._left: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def inject(self, service: str, operation: str, times: int = 1) -> None:
        if service not in THROTTLED_SERVICES:
            raise ValueError(f"throttling is emulated for {', '.join(THROTTLED_SERVICES)}, not {service}")
        with self._lock:
            self._left[(service, operation)] = self._left.get((service, operation), 0) + times

    def take(self, service: str, operation: str) -> bool:
        """True (and one fewer left) if this call is to be answered as throttled."""
        with self._lock:
            left = self._left.get((service, operation), 0)
            if left <= 0:
                return False
            self._left[(service, operation)] = left - 1
            return True

    def clear(self) -> None:
        with self._lock:
            self._left.clear()


# One per process, as moto's backends are (aws_server.start_aws_server clears it).
throttling = ThrottlingInjection()
