"""Powertools logging, tracing and metrics for the handlers (a Lambda container runs one function,
so one logger, tracer and metrics object serve it; the names come from POWERTOOLS_* variables).

Tracing: the template deploys every function with `Tracing: Active`, so Lambda records each
invocation in X-Ray without any code here. With the stack parameter TraceAwsCalls=true
(POWERTOOLS_TRACE_DISABLED=false) Powertools' Tracer also records the handler and its boto3 and
NCBI calls as subsegments, through the X-Ray SDK; that is off by default: the SDK costs ~30 ms of
each cold start and is in maintenance mode since 2026-02-25, unsupported from 2027-02-25 (AWS
X-Ray developer guide, "X-Ray SDK and daemon end of support timeline"). Where tracing is off the
Tracer is never made, so the X-Ray SDK is never imported: making a Tracer imports it even when it
is disabled (outside Lambda, where the SDK also builds a sampling client, ~180 ms). The Tracer
patches only the libraries the functions call out through: botocore (every AWS call) and
http.client (poll_genbank's NCBI requests); Powertools' default patches every library the X-Ray
SDK knows (sqlite3, psycopg, pymongo, ...), importing those present, ~10 ms more of a traced cold
start for nothing the functions use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.shared.functions import strtobool

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

Handler = TypeVar("Handler", bound=Callable[..., Any])
TRACED_LIBRARIES = ("botocore", "httplib")  # X-Ray SDK patcher names


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether Powertools would trace here (its Tracer's own rule): inside Lambda (LAMBDA_TASK_ROOT),
    not under the SAM CLI or Chalice's local mode, and POWERTOOLS_TRACE_DISABLED not true."""
    disabled = strtobool(environ.get("POWERTOOLS_TRACE_DISABLED", "false"))
    in_lambda = bool(environ.get("LAMBDA_TASK_ROOT"))
    local = bool(environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE"))
    return in_lambda and not local and not disabled


def _tracer() -> Tracer | None:
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(patch_modules=TRACED_LIBRARIES)


logger = Logger()
metrics = Metrics()
tracer = _tracer()


def observed_handler(*, log_event: bool = True) -> Callable[[Handler], Handler]:
    """Powertools around a Lambda handler, outermost first: structured logs carrying the Lambda
    context (and the event), an X-Ray subsegment when tracing is on, the metrics flushed when it
    returns."""

    def decorate(handler: Handler) -> Handler:
        measured = metrics.log_metrics(handler)
        traced = tracer.capture_lambda_handler(measured) if tracer is not None else measured
        return logger.inject_lambda_context(log_event=log_event)(traced)

    return decorate
