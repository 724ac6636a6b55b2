"""S3 "Object Created" (EventBridge) under incoming/ -> validated FASTQ tiles -> one HealthOmics import."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import idempotent
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.aws_clients import client
from common.idempotency import idempotency_config, persistence_layer
from common.notify import send_alert
from ingest_fasta.ingest import UploadedObject, ingest_uploaded_fasta
from ingest_fasta.settings import load_ingest_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
settings = load_ingest_settings()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@idempotent(
    config=idempotency_config("detail.[bucket.name, object.key, object.etag]"),
    persistence_store=persistence_layer(),
)
@event_parser(model=S3EventNotificationEventBridgeModel)
def lambda_handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    detail = event.detail
    uploaded = UploadedObject(
        detail.bucket.name, detail.object.key, detail.object.etag, int(detail.object.size or 0)
    )
    result = ingest_uploaded_fasta(
        uploaded,
        s3=client("s3"),
        omics=client("omics"),
        settings=settings,
        alert=lambda subject, details: send_alert(subject, details, settings.alert_topic_arn),
    )
    metrics.add_metric(name=f"Files{result['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BasesIngested", unit=MetricUnit.Count, value=result.get("bases", 0))
    logger.info("ingest finished", extra={"result": result})
    return result
