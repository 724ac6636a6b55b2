"""aws.sagemaker "SageMaker Training Job State Change" -> quality gate, deploy or alert, follow-up."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from deploy_model.models import TrainingJobEnd, TrainingJobStateEvent
from pipeline.dependencies import Dependencies
from pipeline.idempotency import Idempotency
from pipeline.observability import metrics, observed_handler
from pipeline.settings import load_settings
from pipeline.training.deployment import TERMINAL, handle_training_job_end
from pipeline.training.settings import DeploySettings

dependencies = Dependencies(load_settings(DeploySettings))
idempotency = Idempotency("[training_job_name, status]", dependencies.settings)


@idempotency.idempotent_function("job")
def handle_job_end(job: TrainingJobEnd) -> dict[str, Any]:
    return handle_training_job_end(dependencies, job.training_job_name)


@observed_handler()
def lambda_handler(raw_event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event = TrainingJobStateEvent.model_validate(raw_event)
    idempotency.config.register_lambda_context(context)
    detail = event.detail
    if detail.TrainingJobStatus not in TERMINAL:
        return {"outcome": "ignored", "status": detail.TrainingJobStatus}
    result = handle_job_end(
        job=TrainingJobEnd(training_job_name=detail.TrainingJobName, status=detail.TrainingJobStatus)
    )
    metrics.add_metric(name=f"TrainingJob_{result['outcome']}", unit=MetricUnit.Count, value=1)
    return result
