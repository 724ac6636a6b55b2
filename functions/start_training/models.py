"""Typed events for start_training (Powertools parser models)."""

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field


class ImportJobStatusDetail(BaseModel):
    """`detail` of aws.omics "Read Set Import Job Status Change"."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=r"^[0-9]{10,36}$", description="the read set import job id")
    sequenceStoreId: str = Field(pattern=r"^[0-9]{10,36}$")
    status: str
    statusMessage: str | None = None


class OmicsImportJobEvent(EventBridgeModel):
    detail: ImportJobStatusDetail


class ImportJobStatus(BaseModel):
    """What the idempotent domain call is keyed on (same job + same status = same work)."""

    import_job_id: str
    status: str
