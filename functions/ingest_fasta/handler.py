"""S3 "Object Created" (EventBridge) under incoming/ -> validated FASTQ tiles -> one HealthOmics import."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest_fasta.models import ObjectCreatedEvent
from pipeline.dependencies import Dependencies
from pipeline.idempotency import Idempotency
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.uploaded_fasta import UploadedObject, ingest_uploaded_fasta
from pipeline.observability import logger, metrics, observed_handler
from pipeline.settings import load_settings

dependencies = Dependencies(load_settings(IngestSettings))
idempotency = Idempotency("[bucket, key, etag]", dependencies.settings)  # one object version, one ingest


@idempotency.idempotent_function("upload")
def ingest(upload: UploadedObject) -> dict[str, Any]:
    return ingest_uploaded_fasta(
        upload,
        s3=dependencies.s3,
        omics=dependencies.omics,
        settings=dependencies.settings,
        alert=dependencies.alert,
    )


@observed_handler()
def lambda_handler(raw_event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event = ObjectCreatedEvent.model_validate(raw_event)
    idempotency.config.register_lambda_context(context)
    detail = event.detail
    result = ingest(
        upload=UploadedObject(
            detail.bucket.name, detail.object.key, detail.object.etag, int(detail.object.size or 0)
        )
    )
    metrics.add_metric(name=f"Files{result['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BasesIngested", unit=MetricUnit.Count, value=result.get("bases", 0))
    logger.info("ingest finished", extra={"result": result})
    return result
