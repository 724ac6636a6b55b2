"""Typed events for start_training."""

from pydantic import BaseModel, ConfigDict, Field

from pipeline.events import EventBridgeEvent


class ImportJobStatusDetail(BaseModel):
    """`detail` of aws.omics "Read Set Import Job Status Change"."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=r"^[0-9]{10,36}$", description="the read set import job id")
    sequenceStoreId: str = Field(pattern=r"^[0-9]{10,36}$")
    status: str
    statusMessage: str | None = None


class OmicsImportJobEvent(EventBridgeEvent):
    detail: ImportJobStatusDetail


class ImportJobStatus(BaseModel):
    """What the idempotent domain call is keyed on (same job + same status = same work)."""

    import_job_id: str
    status: str
