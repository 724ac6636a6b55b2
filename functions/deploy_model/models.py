"""Typed events for deploy_model (Powertools parser models)."""

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict


class TrainingJobStateDetail(BaseModel):
    """`detail` of aws.sagemaker "SageMaker Training Job State Change" (DescribeTrainingJob's shape)."""

    model_config = ConfigDict(extra="allow")

    TrainingJobName: str
    TrainingJobStatus: str
    TrainingJobArn: str | None = None
    FailureReason: str | None = None


class TrainingJobStateEvent(EventBridgeModel):
    detail: TrainingJobStateDetail


class TrainingJobEnd(BaseModel):
    """Idempotency key of the domain call: one job, one terminal status."""

    training_job_name: str
    status: str
