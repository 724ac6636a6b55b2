"""Typed events for deploy_model."""

from pydantic import BaseModel, ConfigDict

from pipeline.events import EventBridgeEvent


class TrainingJobStateDetail(BaseModel):
    """`detail` of aws.sagemaker "SageMaker Training Job State Change" (DescribeTrainingJob's shape)."""

    model_config = ConfigDict(extra="allow")

    TrainingJobName: str
    TrainingJobStatus: str
    TrainingJobArn: str | None = None
    FailureReason: str | None = None


class TrainingJobStateEvent(EventBridgeEvent):
    detail: TrainingJobStateDetail


class TrainingJobEnd(BaseModel):
    """Idempotency key of the domain call: one job, one terminal status."""

    training_job_name: str
    status: str
