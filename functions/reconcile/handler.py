"""Scheduled reconciler: hands lost import/training job ends to the event handlers' code."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from deploy_model.wiring import deploy_deps
from reconcile.reconciler import reconcile
from reconcile.settings import reconcile_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The schedule's payload carries nothing we need; each run looks at the whole state. A
    # concurrent duplicate run is harmless: every change it makes is a conditional write.
    summary = reconcile(deploy_deps(), reconcile_settings())
    metrics.add_metric(name="ReconciledItems", unit=MetricUnit.Count, value=len(summary["handled"]))
    return summary
