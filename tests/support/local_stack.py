"""The Lambdas' test stack: the local AWS server (hyenaflow.local: one moto server plus our
HealthOmics and SageMaker emulations, over HTTP) with the pipeline's resources in it.

Nothing AWS-side is faked in the tests that use it: import jobs validate their sources, run in
the background and put their aws.omics events on the bus; training jobs and endpoints run as
processes. What a real account does on its own is asked for through the emulations' hooks:
throttling (`inject_throttling`), archiving (`hyenaflow.local.omics.archive_read_sets`), an import
or activation still in flight (`hold_jobs`), a failed activation (`fail_activations`), a spot
interruption (`aws.interrupt_spot_training`), an endpoint update still in flight
(`aws.hold_endpoint_updates`).
"""

from __future__ import annotations

import contextlib
import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyenaflow.local import AwsServer, start_aws_server, wait_for
from tests.support.stack_reads import BucketAndAlertReads

REGION = "us-east-1"
IMPORT_ROLE_ARN = "arn:aws:iam::123456789012:role/hyenaflow-omics-import"
IMPORT_EVENT = "Read Set Import Job Status Change"
IMPORT_ENDED = ("COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED")


@dataclass
class LocalStack(BucketAndAlertReads):
    """The server and the resources template.yaml would create: data bucket, state table (pk/sk),
    alert topic (with an SQS queue subscribed, so tests read the alerts) and sequence store."""

    aws: AwsServer
    bucket: str
    table: str
    topic_arn: str
    alert_queue_url: str
    sequence_store_id: str

    @property
    def endpoint(self) -> str:
        return self.aws.endpoint_url

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    # -- HealthOmics --------------------------------------------------------------------------
    @property
    def store_s3_uri(self) -> str:
        return self.client("omics").get_sequence_store(id=self.sequence_store_id)["s3Access"]["s3Uri"]

    def import_jobs(self) -> list[dict[str, Any]]:
        return self.client("omics").list_read_set_import_jobs(sequenceStoreId=self.sequence_store_id)[
            "importJobs"
        ]

    def read_sets(self, status: str | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"filter": {"status": status}} if status else {}
        return self.client("omics").list_read_sets(sequenceStoreId=self.sequence_store_id, **kwargs)[
            "readSets"
        ]

    def import_job(self, job_id: str) -> dict[str, Any]:
        return self.client("omics").get_read_set_import_job(id=job_id, sequenceStoreId=self.sequence_store_id)

    def wait_for_import(self, job_id: str) -> dict[str, Any]:
        return wait_for(
            lambda: self.import_job(job_id),
            f"import job {job_id} to end",
            60,
            until=lambda job: job["status"] in IMPORT_ENDED,
        )

    def import_fastq(
        self, name: str, fastq: bytes | None = None, wait: bool = True, tags: dict[str, str] | None = None
    ) -> str:
        """Stage `fastq` (default: a few valid reads) as s3://<bucket>/reads/<name>.fastq.gz and
        import it into the store, its read set tagged with `tags` (as ingest tags them); the job
        id (waited for until it ended, unless `wait` is False)."""
        fastq = (
            fastq
            if fastq is not None
            else b"".join(
                b"@%s:%d-%d\nACGTTGCAAC\n+\nIIIIIIIIII\n" % (name.encode(), 10 * i, 10 * i + 10)
                for i in range(4)
            )
        )
        key = f"reads/{name}.fastq.gz"
        self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=gzip.compress(fastq))
        job = self.client("omics").start_read_set_import_job(
            sequenceStoreId=self.sequence_store_id,
            roleArn=IMPORT_ROLE_ARN,
            clientToken=f"test-{name}",
            sources=[
                {
                    "sourceFiles": {"source1": f"s3://{self.bucket}/{key}"},
                    "sourceFileType": "FASTQ",
                    "subjectId": name,
                    "sampleId": name,
                    **({"tags": tags} if tags else {}),
                }
            ],
        )
        if wait:
            self.wait_for_import(job["id"])
        return job["id"]

    # -- EventBridge: the events the emulations put on the bus --------------------------------
    def events(self, detail_type: str, **detail: Any) -> list[dict[str, Any]]:
        """Every event of `detail_type` emitted so far whose detail holds `detail`, in order."""
        return [
            event
            for event in self.aws.events.history
            if event["detail-type"] == detail_type
            and all(event["detail"].get(key) == value for key, value in detail.items())
        ]

    def import_event(self, job_id: str, status: str = "COMPLETED") -> dict[str, Any]:
        """The aws.omics event the import job emitted on reaching `status` (its full envelope)."""
        (event,) = self.events(IMPORT_EVENT, id=job_id, status=status)
        return event

    def inject_throttling(self, service: str, operation: str, times: int = 1) -> None:
        self.aws.inject_throttling(service, operation, times)


def _create_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@contextlib.contextmanager
def local_stack(workdir: Path, bucket: str = "hyenaflow-data-123456789012") -> Iterator[LocalStack]:
    """Start the local AWS server in `workdir`, create the pipeline's resources, and point this
    process's AWS clients (boto3 honours AWS_ENDPOINT_URL, as our Lambdas do) at it."""
    saved = dict(os.environ)
    with start_aws_server(workdir) as aws:
        try:
            os.environ.update({**aws.env(), "AWS_MAX_ATTEMPTS": "5"})
            os.environ.pop("AWS_PROFILE", None)
            aws.client("s3").create_bucket(Bucket=bucket)
            _create_table(aws.client("dynamodb"), "hyenaflow-state")
            sns, sqs = aws.client("sns"), aws.client("sqs")
            topic_arn = sns.create_topic(Name="hyenaflow-alerts")["TopicArn"]
            queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
            store = aws.client("omics").create_sequence_store(name="hyenaflow-reads")
            yield LocalStack(aws, bucket, "hyenaflow-state", topic_arn, queue_url, store["id"])
        finally:
            os.environ.clear()
            os.environ.update(saved)
