"""Test support for the Lambda handlers: a Lambda context, (re)loading a handler module so it reads
the current environment, the sample events, and `moto_stack` (a plain moto server with the
pipeline's bucket, table and topic, for code that needs no emulated service).

The handler tests run on the local AWS server instead (tests/support/local_stack.py and
tests/support/training_pipeline.py: moto plus the HealthOmics and SageMaker emulations).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.support.stack_reads import BucketAndAlertReads

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
FASTA_FIXTURES = REPO / "tests" / "fixtures" / "fasta"
REGION = "us-east-1"


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 1769
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


@dataclass
class MotoStack(BucketAndAlertReads):
    endpoint: str
    bucket: str
    table: str
    topic_arn: str
    alert_queue_url: str

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)


@contextlib.contextmanager
def moto_stack(bucket: str = "hyenaflow-data-111122223333") -> Iterator[MotoStack]:
    """A moto server on 127.0.0.1 with the data bucket, state table (pk/sk) and alert topic."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its backends per process: start from (and leave) an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_MAX_ATTEMPTS": "5",
        }
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    try:
        stack = MotoStack(endpoint, bucket, "hyenaflow-state", "", "")
        stack.client("s3").create_bucket(Bucket=bucket)
        stack.client("dynamodb").create_table(
            TableName=stack.table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        sns, sqs = stack.client("sns"), stack.client("sqs")
        stack.topic_arn = sns.create_topic(Name="hyenaflow-alerts")["TopicArn"]
        stack.alert_queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=stack.alert_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        yield stack
    finally:
        os.environ.clear()
        os.environ.update(saved)
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
        server.stop()


def reset_lambda_clients() -> None:
    """Drop the cached boto3 clients, so the next use reads the current environment (a new moto
    server). Cleared in place, never by reloading `pipeline.*`: modules that did
    `from pipeline.aws_clients import client` would keep the old cached function."""
    from pipeline import aws_clients

    aws_clients.client.cache_clear()


def fresh_lambda_module(module: str) -> Any:
    """(Re)import a handler module so it reads the current environment (its settings, its
    Dependencies and idempotency store), with fresh cached clients."""
    reset_lambda_clients()
    if module in sys.modules:
        return importlib.reload(sys.modules[module])
    return importlib.import_module(module)


def load_event(name: str, **detail_object: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    if detail_object:
        bucket = detail_object.pop("bucket", None)
        if bucket:
            event["detail"]["bucket"]["name"] = bucket
            event["resources"] = [f"arn:aws:s3:::{bucket}"]
        event["detail"]["object"].update(detail_object)
    return event
