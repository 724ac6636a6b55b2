"""start_training on the local AWS server: real imports, real training jobs (tests/support/training_pipeline.py)."""

from __future__ import annotations

import pytest

from hyenaflow.local import omics as omics_emulation
from hyenaflow.local import wait_for
from hyenaflow.local.template import load_template
from tests.support.lambda_env import REPO
from tests.support.training_pipeline import TrainingPipeline, pipeline_fixture  # noqa: F401


def test_completed_import_starts_one_spot_training_job_over_the_store_access_point(
    pipeline: TrainingPipeline,
) -> None:
    job_id = pipeline.import_reads("phage")

    result = pipeline.start_training(pipeline.import_event(job_id))

    assert result["outcome"] == "started"
    assert pipeline.training_jobs() == [f"hyenaflow-{job_id}"]
    job = pipeline.describe_job(f"hyenaflow-{job_id}")
    assert job["TrainingJobStatus"] == "InProgress"
    channel = job["InputDataConfig"][0]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == pipeline.stack.store_s3_uri  # GetSequenceStore's
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"]["MaxWaitTimeInSeconds"] >= job["StoppingCondition"]["MaxRuntimeInSeconds"]
    bucket = pipeline.stack.bucket
    assert job["CheckpointConfig"]["S3Uri"] == f"s3://{bucket}/checkpoints/hyenaflow-{job_id}/"
    hyperparameters = job["HyperParameters"]
    assert hyperparameters["sagemaker_program"] == "train.py"
    assert hyperparameters["sagemaker_submit_directory"] == f"s3://{bucket}/code/training/sourcedir.tar.gz"
    assert "init_from" not in hyperparameters  # nothing serving yet: no warm start
    assert pipeline.slot()["state"] == "running"


def test_replayed_import_event_starts_no_second_training_job(pipeline: TrainingPipeline) -> None:
    job_id = pipeline.import_reads("phage")
    event = pipeline.import_event(job_id)

    first = pipeline.start_training(event)
    duplicate = pipeline.start_training(event)  # at-least-once delivery: same event id
    replay = pipeline.start_training(pipeline.import_event(job_id, event_id="archive-replay-1"))

    assert first["outcome"] == "started"
    assert duplicate == first  # Powertools idempotency returns the stored result
    assert replay["outcome"] in {"started", "already-handled"}
    assert pipeline.training_jobs() == [f"hyenaflow-{job_id}"]


def test_replay_after_the_idempotency_record_expired_starts_no_second_job(pipeline: TrainingPipeline) -> None:
    job_id = pipeline.import_reads("phage")
    pipeline.start_training(pipeline.import_event(job_id))
    assert pipeline.drop_idempotency_records() >= 1  # only the state table's handled-marker protects now

    result = pipeline.start_training(pipeline.import_event(job_id))

    assert result["outcome"] == "already-handled"
    assert pipeline.training_jobs() == [f"hyenaflow-{job_id}"]
    assert pipeline.slot()["job_name"] == f"hyenaflow-{job_id}"


def test_replay_after_the_job_ended_and_the_record_expired_leaves_the_slot_free(
    pipeline: TrainingPipeline,
) -> None:
    # Given an import whose training job ran and ended, and whose Powertools record has expired
    job_id = pipeline.import_reads("phage")
    job = pipeline.start_training(pipeline.import_event(job_id))["training_job"]
    pipeline.end_job(job, "Failed")
    assert pipeline.deploy_model(pipeline.training_event(job, "Failed"))["outcome"] == "alerted"
    assert pipeline.slot()["state"] == "idle"
    pipeline.drop_idempotency_records()

    # When EventBridge replays the import's event from its archive
    replayed = pipeline.start_training(pipeline.import_event(job_id, event_id="archive-replay-7-days-later"))

    # Then nothing starts, the slot stays free, and the next import trains at once
    assert replayed["outcome"] == "already-handled"
    assert pipeline.slot()["state"] == "idle"
    later = pipeline.import_reads("more-phage")
    assert pipeline.start_training(pipeline.import_event(later))["outcome"] == "started"
    assert pipeline.training_jobs() == sorted([job, f"hyenaflow-{later}"])


def test_completed_event_before_the_jobs_in_progress_event_starts_one_job(pipeline: TrainingPipeline) -> None:
    job_id = pipeline.import_reads("phage")

    completed = pipeline.start_training(pipeline.import_event(job_id, "COMPLETED"))
    late_in_progress = pipeline.start_training(pipeline.import_event(job_id, "IN_PROGRESS"))

    assert completed["outcome"] == "started"
    assert late_in_progress["outcome"] == "ignored"
    assert pipeline.training_jobs() == [f"hyenaflow-{job_id}"]
    assert (pipeline.slot()["state"], pipeline.slot()["job_name"]) == ("running", f"hyenaflow-{job_id}")


def test_completed_event_for_an_import_still_in_progress_trains_only_once_it_ended(
    pipeline: TrainingPipeline,
) -> None:
    # Given an import job that GetReadSetImportJob still reports IN_PROGRESS
    omics_emulation.hold_jobs()
    job_id = pipeline.stack.import_fastq("phage", wait=False)
    early = pipeline.early_import_event(job_id, "COMPLETED")

    # When its COMPLETED event arrives early, the handler raises (Lambda keeps the event) and
    # starts nothing: the store does not hold the job's read set yet
    with pytest.raises(
        RuntimeError, match=f"import job {job_id} is IN_PROGRESS according to GetReadSetImportJob"
    ):
        pipeline.start_training(early)
    assert pipeline.training_jobs() == []
    assert pipeline.slot()["state"] == "idle"

    # Then Lambda's retry after the import ended starts the one job, and the job's own event changes nothing
    omics_emulation.release_jobs()
    pipeline.stack.wait_for_import(job_id)
    retried = pipeline.start_training(early)
    own_event = pipeline.start_training(pipeline.import_event(job_id))
    assert retried["outcome"] == "started" and own_event == retried
    assert pipeline.training_jobs() == [f"hyenaflow-{job_id}"]


def test_failed_import_alerts_with_each_failed_source_and_trains_nothing(pipeline: TrainingPipeline) -> None:
    job_id = pipeline.import_bad_reads("phage")
    source = pipeline.stack.import_job(job_id)["sources"][0]

    result = pipeline.start_training(pipeline.import_event(job_id, "FAILED"))
    pipeline.start_training(pipeline.import_event(job_id, "FAILED", event_id="replayed"))

    assert result["outcome"] == "alerted"
    alerts = pipeline.stack.alerts()
    assert len(alerts) == 1
    assert f"{job_id} FAILED" in alerts[0]["subject"]
    (failed,) = alerts[0]["details"]["failedSources"]
    assert failed["statusMessage"] == source["statusMessage"] and "phage.fastq.gz" in failed["statusMessage"]
    assert failed["sourceFiles"] == {"source1": f"s3://{pipeline.stack.bucket}/reads/phage.fastq.gz"}
    assert pipeline.training_jobs() == []


def test_archived_read_sets_are_reactivated_and_trained_on_once_activation_completed(
    pipeline: TrainingPipeline,
) -> None:
    # Given read sets HealthOmics archived (30 days unread), and a new import completing
    first, second = pipeline.import_reads("old-phage"), pipeline.import_reads("old-virus")
    archived = omics_emulation.archive_read_sets(pipeline.stack.sequence_store_id)
    new = pipeline.import_reads("new-phage")
    omics_emulation.hold_jobs("activation")  # the activation takes its time

    # When start_training handles the new import
    result = pipeline.start_training(pipeline.import_event(new))

    # Then it reactivates the archived read sets instead of training on a store it cannot read
    assert result["outcome"] == "activating" and result["read_sets"] == len(archived) == 2
    assert pipeline.training_jobs() == []
    assert pipeline.slot()["state"] == "activating"
    assert {r["id"] for r in pipeline.stack.read_sets("ACTIVATING")} == set(archived)
    waiting = {h["item"]: h["outcome"] for h in pipeline.reconcile()["handled"]}
    assert waiting["activation"] == "still-activating"  # (the old imports' lost events: coalesced)
    assert pipeline.training_jobs() == []

    # and trains once the activation completed: one job, which reads every read set
    omics_emulation.release_jobs()
    (activation_id,) = result["activation_job_ids"]
    wait_for(
        lambda: pipeline.stack.client("omics").get_read_set_activation_job(
            id=activation_id, sequenceStoreId=pipeline.stack.sequence_store_id
        )["status"],
        "the activation job to complete",
        60,
        until=lambda status: status == "COMPLETED",
    )
    started = pipeline.reconcile()
    assert {h["item"]: h["outcome"] for h in started["handled"]}["activation"] == "started"
    job = f"hyenaflow-{new}"
    assert pipeline.training_jobs() == [job]
    channel = pipeline.stack.aws.workdir / "sagemaker" / "training" / job / "input" / "data" / "train"
    downloaded = wait_for(
        lambda: sorted(p.parent.name for p in channel.rglob("*.fastq.gz")),
        "the job to download its channel",
        60,
        until=lambda names: len(names) == 3,
    )
    read_sets = {pipeline.stack.import_job(j)["sources"][0]["readSetId"] for j in (first, second, new)}
    assert set(downloaded) == read_sets


def test_throttled_sagemaker_and_omics_calls_are_retried_with_backoff(pipeline: TrainingPipeline) -> None:
    job_id = pipeline.import_reads("phage")
    pipeline.stack.inject_throttling("omics", "GetSequenceStore", times=1)
    pipeline.stack.inject_throttling("sagemaker", "CreateTrainingJob", times=1)

    result = pipeline.start_training(pipeline.import_event(job_id))

    assert result["outcome"] == "started"
    omics_calls = [operation for operation, _ in pipeline.omics_requests]
    sagemaker_calls = [operation for operation, _ in pipeline.sagemaker_requests]
    assert omics_calls.count("GetSequenceStore") == 2  # ThrottlingException (429), then success
    assert sagemaker_calls.count("CreateTrainingJob") == 2
    assert pipeline.training_jobs() == [f"hyenaflow-{job_id}"]


def test_non_retryable_error_raises_so_lambda_keeps_the_event(pipeline: TrainingPipeline) -> None:
    from pipeline.aws_clients import client

    job_id = pipeline.import_reads("phage")
    attempts = client("omics").meta.config.retries["total_max_attempts"]
    pipeline.stack.inject_throttling("omics", "GetSequenceStore", times=attempts)  # every try of one call

    with pytest.raises(Exception, match="ThrottlingException|Rate exceeded"):
        pipeline.start_training(pipeline.import_event(job_id))
    assert pipeline.training_jobs() == []
    retried = pipeline.start_training(pipeline.import_event(job_id))  # Lambda's async retry

    assert retried["outcome"] in {"started", "already-handled"}
    assert pipeline.training_jobs() == [f"hyenaflow-{job_id}"]


def test_in_progress_import_status_is_ignored(pipeline: TrainingPipeline) -> None:
    omics_emulation.hold_jobs()
    job_id = pipeline.stack.import_fastq("phage", wait=False)
    wait_for(lambda: pipeline.stack.events("Read Set Import Job Status Change", id=job_id), "IN_PROGRESS")

    result = pipeline.start_training(pipeline.import_event(job_id, "IN_PROGRESS"))

    assert result["outcome"] == "ignored"
    assert pipeline.training_jobs() == []


def test_omics_calls_are_spaced_at_the_default_omics_tps(pipeline: TrainingPipeline) -> None:
    from pipeline.training.settings import TrainingSettings

    # Given start_training's OMICS_TPS as deployed: template.yaml sets none, so the default applies
    function = load_template(REPO / "template.yaml")["Resources"]["StartTrainingFunction"]["Properties"]
    assert "OMICS_TPS" not in function["Environment"]["Variables"]
    tps = TrainingSettings.model_fields["omics_tps"].default
    assert tps <= 5  # HealthOmics' control-plane quota
    job_id = pipeline.import_reads("phage")

    # When it handles an import (several HealthOmics calls back to back on the virtual clock)
    pipeline.start_training(pipeline.import_event(job_id))

    # Then its calls leave 1/OMICS_TPS apart, no closer
    times = [at for _, at in pipeline.omics_requests]
    assert len(times) >= 3
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert gaps == [pytest.approx(1 / tps)] * len(gaps)
