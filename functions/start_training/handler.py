"""aws.omics "Read Set Import Job Status Change" -> start (or coalesce) a training job."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.idempotency import idempotency_config, persistence_layer
from start_training.models import ImportJobStatus, OmicsImportJobEvent
from start_training.settings import training_settings
from start_training.training import handle_import_status
from start_training.wiring import training_deps

logger = Logger()
tracer = Tracer()
metrics = Metrics()
IDEMPOTENCY = idempotency_config("[import_job_id, status]")


@idempotent_function(data_keyword_argument="job", config=IDEMPOTENCY, persistence_store=persistence_layer())
def handle_import(job: ImportJobStatus) -> dict[str, Any]:
    return handle_import_status(training_deps(), job.import_job_id, job.status)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=OmicsImportJobEvent)
def lambda_handler(event: OmicsImportJobEvent, context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY.register_lambda_context(context)
    if event.detail.sequenceStoreId != training_settings().sequence_store_id:
        logger.warning(
            "event for another sequence store ignored", extra={"store": event.detail.sequenceStoreId}
        )
        return {"outcome": "ignored", "reason": "other sequence store"}
    result = handle_import(job=ImportJobStatus(import_job_id=event.detail.id, status=event.detail.status))
    metrics.add_metric(name=f"Import_{result['outcome']}", unit=MetricUnit.Count, value=1)
    return result
