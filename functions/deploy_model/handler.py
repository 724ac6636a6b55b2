"""aws.sagemaker "SageMaker Training Job State Change" -> quality gate, deploy or alert, follow-up."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.idempotency import idempotency_config, persistence_layer
from deploy_model.deployment import TERMINAL, handle_training_job_end
from deploy_model.models import TrainingJobEnd, TrainingJobStateEvent
from deploy_model.wiring import deploy_deps

logger = Logger()
tracer = Tracer()
metrics = Metrics()
IDEMPOTENCY = idempotency_config("[training_job_name, status]")


@idempotent_function(data_keyword_argument="job", config=IDEMPOTENCY, persistence_store=persistence_layer())
def handle_job_end(job: TrainingJobEnd) -> dict[str, Any]:
    return handle_training_job_end(deploy_deps(), job.training_job_name)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=TrainingJobStateEvent)
def lambda_handler(event: TrainingJobStateEvent, context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY.register_lambda_context(context)
    detail = event.detail
    if detail.TrainingJobStatus not in TERMINAL:
        return {"outcome": "ignored", "status": detail.TrainingJobStatus}
    result = handle_job_end(
        job=TrainingJobEnd(training_job_name=detail.TrainingJobName, status=detail.TrainingJobStatus)
    )
    metrics.add_metric(name=f"TrainingJob_{result['outcome']}", unit=MetricUnit.Count, value=1)
    return result
