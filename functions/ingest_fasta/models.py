"""The ingest_fasta trigger: S3 "Object Created" delivered by EventBridge."""

from pydantic import BaseModel, ConfigDict, Field

from pipeline.events import EventBridgeEvent


class S3Bucket(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str


class S3Object(BaseModel):
    model_config = ConfigDict(extra="allow")

    key: str
    size: int | None = None
    etag: str = ""
    version_id: str | None = Field(default=None, alias="version-id")


class ObjectCreatedDetail(BaseModel):
    """`detail` of aws.s3 "Object Created" (S3 Event Notifications through EventBridge)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    bucket: S3Bucket
    object: S3Object
    reason: str | None = None


class ObjectCreatedEvent(EventBridgeEvent):
    detail: ObjectCreatedDetail
