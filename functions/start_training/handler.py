"""aws.omics "Read Set Import Job Status Change" -> start (or coalesce) a training job."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.dependencies import Dependencies
from pipeline.idempotency import Idempotency
from pipeline.observability import logger, metrics, observed_handler
from pipeline.settings import load_settings
from pipeline.training.settings import TrainingSettings
from pipeline.training.slot import handle_import_status
from start_training.models import ImportJobStatus, OmicsImportJobEvent

dependencies = Dependencies(load_settings(TrainingSettings))
idempotency = Idempotency("[import_job_id, status]", dependencies.settings)


@idempotency.idempotent_function("job")
def handle_import(job: ImportJobStatus) -> dict[str, Any]:
    return handle_import_status(dependencies, job.import_job_id, job.status)


@observed_handler()
def lambda_handler(raw_event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event = OmicsImportJobEvent.model_validate(raw_event)
    idempotency.config.register_lambda_context(context)
    if event.detail.sequenceStoreId != dependencies.settings.sequence_store_id:
        logger.warning(
            "event for another sequence store ignored", extra={"store": event.detail.sequenceStoreId}
        )
        return {"outcome": "ignored", "reason": "other sequence store"}
    result = handle_import(job=ImportJobStatus(import_job_id=event.detail.id, status=event.detail.status))
    metrics.add_metric(name=f"Import_{result['outcome']}", unit=MetricUnit.Count, value=1)
    return result
