"""Powertools logging, tracing and metrics for the handlers (a Lambda container runs one function,
so one logger, tracer and metrics object serve it; the names come from POWERTOOLS_* variables)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

Handler = TypeVar("Handler", bound=Callable[..., Any])


def observed_handler(*, log_event: bool = True) -> Callable[[Handler], Handler]:
    """Powertools around a Lambda handler, outermost first: structured logs carrying the Lambda
    context (and the event), an X-Ray subsegment, the metrics flushed when it returns."""

    def decorate(handler: Handler) -> Handler:
        traced = tracer.capture_lambda_handler(metrics.log_metrics(handler))
        return logger.inject_lambda_context(log_event=log_event)(traced)

    return decorate
