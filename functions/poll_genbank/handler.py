"""Schedule -> esearch/efetch new GenBank versions -> incoming/genbank/<accession.version>.fa."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.aws_clients import client
from common.notify import send_alert
from poll_genbank.eutils import EutilsClient, EutilsError
from poll_genbank.models import PollTrigger
from poll_genbank.poller import GenbankState, PollConfig, poll_genbank
from poll_genbank.settings import load_poll_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
settings = load_poll_settings()
config = PollConfig(
    db=settings.genbank_db,
    query=settings.genbank_query,
    batch_size=settings.genbank_batch_size,
    max_records_per_run=settings.genbank_max_records_per_run,
    initial_lookback_days=settings.genbank_initial_lookback_days,
)


def _api_key() -> str | None:
    if not settings.ncbi_api_key_parameter:
        return None
    # Powertools caches the decrypted value for max_age seconds across warm invocations.
    return str(_ssm().get(settings.ncbi_api_key_parameter, decrypt=True, max_age=900))


@cache
def _ssm() -> SSMProvider:
    return SSMProvider(boto3_client=client("ssm"))


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PollTrigger)
def lambda_handler(event: PollTrigger, context: LambdaContext) -> dict[str, Any]:
    eutils = EutilsClient(
        settings.eutils_base_url, tool=settings.ncbi_tool, email=settings.ncbi_email, api_key=_api_key()
    )
    try:
        result = poll_genbank(
            now=event.time.astimezone(UTC) if event.time else datetime.now(UTC),
            config=config,
            eutils=eutils,
            state=GenbankState(client("dynamodb"), settings.state_table, config),
            s3=client("s3"),
            bucket=settings.data_bucket,
        )
    except EutilsError as err:  # NCBI still failing after retries: tell the operator, let Lambda retry
        send_alert(
            "hyenaflow: GenBank poll failed",
            {"query": config.query, "error": str(err)},
            settings.alert_topic_arn,
        )
        raise
    metrics.add_metric(name="GenbankRecordsWritten", unit=MetricUnit.Count, value=result.written)
    metrics.add_metric(name="GenbankRecordsSkipped", unit=MetricUnit.Count, value=result.skipped_seen)
    logger.info("genbank poll finished", extra={"result": result.as_dict()})
    return result.as_dict()
