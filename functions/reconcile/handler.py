"""Scheduled reconciler: hands lost import/training job ends to the event handlers' code."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.dependencies import Dependencies
from pipeline.observability import metrics, observed_handler
from pipeline.settings import load_settings
from pipeline.training.reconciler import reconcile
from pipeline.training.settings import ReconcileSettings

dependencies = Dependencies(load_settings(ReconcileSettings))


@observed_handler(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The schedule's payload carries nothing we need; each run looks at the whole state. A
    # concurrent duplicate run is harmless: every change it makes is a conditional write.
    summary = reconcile(dependencies)
    metrics.add_metric(name="ReconciledItems", unit=MetricUnit.Count, value=len(summary["handled"]))
    return summary
