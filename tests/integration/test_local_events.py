"""Event routing of the local stack, taken from the project's template.yaml.

The stack runs without its delivery loop here, so each event stays in the invoke queue of the
function the template's rules route it to, where the test reads it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hyenaflow.local.pipeline import REPO_ROOT, LocalPipeline, PipelineConfig
from ingest_fasta.models import ObjectCreatedEvent

TEMPLATE = REPO_ROOT / "template.yaml"
FASTA = b">probe\nACGTACGTNNACGT\n"


def _start(workdir: Path, template: Path = TEMPLATE) -> LocalPipeline:
    return LocalPipeline(
        PipelineConfig(workdir=workdir, template_path=template, deliver=False, upload_training_code=False)
    ).start()


@pytest.fixture
def pipeline(tmp_path: Path):
    pipeline = _start(tmp_path / "local")
    yield pipeline
    pipeline.stop()


def _queued(pipeline: LocalPipeline, logical_id: str) -> list[dict[str, Any]]:
    """Events waiting for `logical_id` (received and deleted)."""
    sqs = pipeline.client("sqs")
    url = pipeline.router.queue_urls.get(logical_id)
    if url is None:
        return []
    events = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return events
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            events.append(json.loads(message["Body"]))


def _all_queued(pipeline: LocalPipeline) -> dict[str, list[dict[str, Any]]]:
    return {logical_id: _queued(pipeline, logical_id) for logical_id in pipeline.router.queue_urls}


def test_fasta_dropped_in_incoming_reaches_ingest_as_s3_eventbridge_event(pipeline: LocalPipeline) -> None:
    s3 = pipeline.client("s3")
    s3.put_object(Bucket=pipeline.data_bucket, Key="incoming/phage one.fa", Body=FASTA)
    s3.put_object(Bucket=pipeline.data_bucket, Key="incoming/phage-two.fa", Body=FASTA + b"ACGT\n")
    head = s3.head_object(Bucket=pipeline.data_bucket, Key="incoming/phage-two.fa")

    ingest = pipeline.function_for_handler("ingest_fasta").logical_id
    queued = _all_queued(pipeline)

    first, second = queued.pop(ingest)
    assert all(events == [] for events in queued.values()), queued  # no other function gets it
    parsed = ObjectCreatedEvent.model_validate(second)  # the handler's own model
    assert parsed.detail.bucket.name == pipeline.data_bucket
    assert parsed.detail.object.key == "incoming/phage-two.fa"
    assert parsed.detail.object.etag == head["ETag"].strip('"')
    assert parsed.detail.object.size == len(FASTA) + 5
    assert second["detail"]["reason"] == "PutObject"
    assert first["detail"]["object"]["key"] == "incoming/phage+one.fa"  # URL-encoded, as S3 sends it
    assert first["id"] != second["id"]


def test_a_multipart_upload_into_incoming_sends_one_object_created_event(pipeline: LocalPipeline) -> None:
    s3 = pipeline.client("s3")
    key = "incoming/genbank/genbank-20261112T060000Z.fa"
    upload = s3.create_multipart_upload(Bucket=pipeline.data_bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=pipeline.data_bucket, Key=key, UploadId=upload, PartNumber=1, Body=FASTA)
    s3.complete_multipart_upload(
        Bucket=pipeline.data_bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )

    (event,) = _queued(pipeline, pipeline.function_for_handler("ingest_fasta").logical_id)
    assert event["detail"]["reason"] == "CompleteMultipartUpload" and event["detail"]["object"]["key"] == key


def test_objects_outside_incoming_reach_no_function(pipeline: LocalPipeline) -> None:
    s3 = pipeline.client("s3")
    for key in ("staged/probe/tile.fastq.gz", "rejected/probe.fa", "code/training/sourcedir.tar.gz"):
        s3.put_object(Bucket=pipeline.data_bucket, Key=key, Body=FASTA)

    assert _all_queued(pipeline) == {logical_id: [] for logical_id in pipeline.router.queue_urls}


def test_omics_import_completion_reaches_start_training_only(pipeline: LocalPipeline) -> None:
    detail = {"id": "1234567890", "sequenceStoreId": pipeline.sequence_store_id, "status": "COMPLETED"}
    pipeline.aws.events.put(
        pipeline.aws.account_id,
        pipeline.config.region,
        "aws.omics",
        "Read Set Import Job Status Change",
        detail,
        [
            f"arn:aws:omics:us-east-1:123456789012:sequenceStore/{pipeline.sequence_store_id}/importJob/1234567890"
        ],
    )

    start_training = pipeline.function_for_handler("start_training").logical_id
    queued = _all_queued(pipeline)
    (event,) = queued.pop(start_training)
    assert event["detail"] == detail and event["source"] == "aws.omics"
    assert all(events == [] for events in queued.values()), queued


def test_training_job_completion_reaches_deploy_model(pipeline: LocalPipeline) -> None:
    detail = {"TrainingJobName": "hyenaflow-1234567890", "TrainingJobStatus": "Completed"}
    pipeline.aws.events.put(
        pipeline.aws.account_id,
        pipeline.config.region,
        "aws.sagemaker",
        "SageMaker Training Job State Change",
        detail,
        ["arn:aws:sagemaker:us-east-1:123456789012:training-job/hyenaflow-1234567890"],
    )

    deploy = pipeline.function_for_handler("deploy_model").logical_id
    (event,) = _queued(pipeline, deploy)
    assert event["detail"]["TrainingJobName"] == "hyenaflow-1234567890"


def test_wrong_pattern_in_template_fails_locally_too(tmp_path: Path) -> None:
    # Given a template whose ingest rule watches a prefix the uploads never use
    text = TEMPLATE.read_text()
    assert "incoming/" in text
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace("incoming/", "inbox/"))
    pipeline = _start(tmp_path / "local", broken)
    try:
        # When a FASTA lands in incoming/
        pipeline.client("s3").put_object(Bucket=pipeline.data_bucket, Key="incoming/probe.fa", Body=FASTA)
        # Then no function is invoked, exactly as in AWS
        ingest = pipeline.function_for_handler("ingest_fasta").logical_id
        assert _queued(pipeline, ingest) == []
        # (and the rule does fire for the prefix it names, so the routing itself works)
        pipeline.client("s3").put_object(Bucket=pipeline.data_bucket, Key="inbox/probe.fa", Body=FASTA)
        assert len(_queued(pipeline, ingest)) == 1
    finally:
        pipeline.stop()


def test_schedules_of_the_template_fire_on_request(pipeline: LocalPipeline) -> None:
    scheduled = sorted({route.function_logical_id for route in pipeline.router.routes if route.schedule})
    assert scheduled, "template.yaml declares no schedule"

    for logical_id in scheduled:
        pipeline.fire_schedule(logical_id)

    for logical_id in scheduled:
        assert len(_queued(pipeline, logical_id)) == 1


def test_the_poll_schedule_sends_its_scheduled_time(pipeline: LocalPipeline) -> None:
    # template.yaml's Scheduler Input names <aws.scheduler.scheduled-time>; Scheduler fills it in.
    poll = pipeline.function_for_handler("poll_genbank").logical_id

    pipeline.fire_schedule(poll)

    (event,) = _queued(pipeline, poll)
    assert set(event) == {"time"}
    assert datetime.fromisoformat(event["time"]).tzinfo is not None
