"""Schedule -> esearch/efetch new GenBank versions -> one FASTA per run, incoming/genbank/genbank-<time>.fa."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.dependencies import Dependencies
from pipeline.genbank.poller import poll_for_new_records
from pipeline.genbank.settings import PollSettings
from pipeline.observability import logger, metrics, observed_handler
from pipeline.settings import load_settings
from poll_genbank.models import PollTrigger

dependencies = Dependencies(load_settings(PollSettings))


@observed_handler()
def lambda_handler(raw_event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event = PollTrigger.model_validate(raw_event)
    now = event.time.astimezone(UTC) if event.time else datetime.now(UTC)
    result = poll_for_new_records(dependencies, now)
    metrics.add_metric(name="GenbankRecordsWritten", unit=MetricUnit.Count, value=result.written)
    metrics.add_metric(name="GenbankRecordsSkipped", unit=MetricUnit.Count, value=result.skipped_seen)
    logger.info("genbank poll finished", extra={"result": result.as_dict()})
    return result.as_dict()
