"""start_training against a moto server over HTTP (HealthOmics faked at the botocore layer)."""

from __future__ import annotations

import pytest

from tests.integration.test_start_training_harness import STORE_S3_URI, Pipeline, pipeline_fixture  # noqa: F401


def test_completed_import_starts_one_spot_training_job_over_the_store_access_point(
    pipeline: Pipeline,
) -> None:
    pipeline.omics.add_import_job("4000000001", "COMPLETED")

    result = pipeline.start_training(pipeline.import_event("4000000001"))

    assert result["outcome"] == "started"
    assert pipeline.training_jobs() == ["hyenaflow-4000000001"]
    job = pipeline.describe_job("hyenaflow-4000000001")
    channel = job["InputDataConfig"][0]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == STORE_S3_URI  # from GetSequenceStore
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"]["MaxWaitTimeInSeconds"] >= job["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert (
        job["CheckpointConfig"]["S3Uri"] == f"s3://{pipeline.stack.bucket}/checkpoints/hyenaflow-4000000001/"
    )
    hyperparameters = job["HyperParameters"]
    assert hyperparameters["sagemaker_program"] == "train.py"
    assert (
        hyperparameters["sagemaker_submit_directory"]
        == f"s3://{pipeline.stack.bucket}/code/training/sourcedir.tar.gz"
    )
    assert "init_from" not in hyperparameters  # nothing serving yet: no warm start
    assert pipeline.slot()["state"] == "running"


def test_replayed_import_event_starts_no_second_training_job(pipeline: Pipeline) -> None:
    pipeline.omics.add_import_job("4000000001", "COMPLETED")
    event = pipeline.import_event("4000000001")

    first = pipeline.start_training(event)
    duplicate = pipeline.start_training(event)  # at-least-once delivery: same event id
    replay = pipeline.start_training(pipeline.import_event("4000000001", event_id="archive-replay-1"))

    assert first["outcome"] == "started"
    assert duplicate == first  # Powertools idempotency returns the stored result
    assert replay["outcome"] in {"started", "already-handled"}
    assert pipeline.create_training_calls == ["hyenaflow-4000000001"]
    assert pipeline.training_jobs() == ["hyenaflow-4000000001"]


def test_replay_after_idempotency_record_expired_starts_no_second_job(pipeline: Pipeline) -> None:
    pipeline.omics.add_import_job("4000000001", "COMPLETED")
    pipeline.start_training(pipeline.import_event("4000000001"))
    # Drop Powertools' records: only the state table's handled-marker protects now.
    ddb = pipeline.stack.client("dynamodb")
    for item in ddb.scan(TableName=pipeline.stack.table)["Items"]:
        if item["pk"]["S"].startswith("idempotency#"):
            ddb.delete_item(TableName=pipeline.stack.table, Key={"pk": item["pk"], "sk": item["sk"]})

    result = pipeline.start_training(pipeline.import_event("4000000001"))

    assert result["outcome"] == "already-handled"
    assert pipeline.create_training_calls == ["hyenaflow-4000000001"]


def test_failed_import_alerts_with_each_failed_source_and_trains_nothing(pipeline: Pipeline) -> None:
    pipeline.omics.add_import_job(
        "4000000002",
        "FAILED",
        sources=[
            {
                "sourceFiles": {"source1": "s3://b/staged/phage/part-0.fastq.gz"},
                "sourceFileType": "FASTQ",
                "status": "FAILED",
                "statusMessage": "Read length exceeds the FASTQ limit",
                "subjectId": "phage",
                "sampleId": "phage",
            }
        ],
    )

    result = pipeline.start_training(pipeline.import_event("4000000002", status="FAILED"))
    pipeline.start_training(pipeline.import_event("4000000002", status="FAILED", event_id="replayed"))

    assert result["outcome"] == "alerted"
    alerts = pipeline.stack.alerts()
    assert len(alerts) == 1
    assert "4000000002 FAILED" in alerts[0]["subject"]
    failed = alerts[0]["details"]["failedSources"]
    assert failed[0]["statusMessage"] == "Read length exceeds the FASTQ limit"
    assert failed[0]["sourceFiles"] == {"source1": "s3://b/staged/phage/part-0.fastq.gz"}
    assert pipeline.training_jobs() == []


def test_archived_read_sets_are_reactivated_instead_of_training(pipeline: Pipeline) -> None:
    pipeline.omics.read_sets.update(
        {"5000000001": "ARCHIVED", "5000000002": "ACTIVE", "5000000003": "ARCHIVED"}
    )
    pipeline.omics.add_import_job("4000000001", "COMPLETED")

    result = pipeline.start_training(pipeline.import_event("4000000001"))

    assert result["outcome"] == "activating"
    assert pipeline.training_jobs() == []
    (activation,) = pipeline.omics.activation_jobs.values()
    assert sorted(s["readSetId"] for s in activation["sources"]) == ["5000000001", "5000000003"]
    assert pipeline.slot()["state"] == "activating"


def test_throttled_sagemaker_and_omics_calls_are_retried_with_backoff(pipeline: Pipeline) -> None:
    pipeline.omics.add_import_job("4000000001", "COMPLETED")
    pipeline.omics.throttle["GetSequenceStore"] = 1
    pipeline.sagemaker_throttle["CreateTrainingJob"] = 1

    result = pipeline.start_training(pipeline.import_event("4000000001"))

    assert result["outcome"] == "started"
    assert pipeline.omics.count("GetSequenceStore") == 2  # 429, then success
    assert pipeline.create_training_calls == ["hyenaflow-4000000001"]  # the throttled try never reached moto
    assert pipeline.training_jobs() == ["hyenaflow-4000000001"]


def test_non_retryable_error_raises_so_lambda_keeps_the_event(pipeline: Pipeline) -> None:
    pipeline.omics.add_import_job("4000000001", "COMPLETED")
    pipeline.omics.throttle["GetSequenceStore"] = 99  # beyond the retry budget

    with pytest.raises(Exception, match="ThrottlingException|Rate exceeded"):
        pipeline.start_training(pipeline.import_event("4000000001"))
    pipeline.omics.throttle["GetSequenceStore"] = 0
    retried = pipeline.start_training(pipeline.import_event("4000000001"))  # Lambda's async retry

    assert retried["outcome"] in {"started", "already-handled"}
    assert pipeline.training_jobs() == ["hyenaflow-4000000001"]


def test_in_progress_import_status_is_ignored(pipeline: Pipeline) -> None:
    result = pipeline.start_training(pipeline.import_event("4000000004", status="IN_PROGRESS"))

    assert result["outcome"] == "ignored"
    assert pipeline.training_jobs() == []
