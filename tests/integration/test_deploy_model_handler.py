"""deploy_model on the local AWS server (tests/support/training_pipeline.py): quality gate, model
registry, blue/green update, alerts, follow-up.

Imports, training jobs, the model registry and endpoints are the emulation's; a job's stand-in
train.py ends as the test decides (`end_job`), printing the metric lines train.py prints. Every
Completed job is registered in the model package group with the gate's decision; only an
Approved package is deployed. Figures come from the job's `[best]` line (candidate, baseline and
the "seen" pair), never from `[eval]` (the stand-in's last `[eval]` is 0.01 worse than its
`[best]`, so a gate reading it would record, and sometimes decide, differently).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.training_pipeline import (  # noqa: F401 - the `pipeline` fixture
    ROLLBACK_ALARMS,
    TrainingPipeline,
    pipeline_fixture,
)


def _train(pipeline: TrainingPipeline, reads: str) -> str:
    """Reads are imported and start_training starts their job; returns the job name."""
    job_id = pipeline.import_reads(reads)
    result = pipeline.start_training(pipeline.import_event(job_id))
    assert result["outcome"] == "started", result
    return result["training_job"]


def _finish(
    pipeline: TrainingPipeline,
    job: str,
    status: str = "Completed",
    eval_perplexity: float | None = 3.5,
    baseline: float | None = None,
    seen: tuple[float, float] | None = None,
) -> dict:
    """The job ends as `status`; deploy_model handles its state-change event."""
    pipeline.end_job(job, status, eval_perplexity, baseline=baseline, seen=seen)
    return pipeline.deploy_model(pipeline.training_event(job, status))


def _serving_first_model(pipeline: TrainingPipeline, eval_perplexity: float = 3.7) -> str:
    first = _train(pipeline, "genome-1")
    assert _finish(pipeline, first, eval_perplexity=eval_perplexity)["outcome"] == "deployed"
    assert pipeline.settled_endpoint()["EndpointStatus"] == "InService"
    pipeline.stack.alerts()  # drain
    return first


def _package(pipeline: TrainingPipeline, job: str) -> dict[str, Any]:
    (package,) = [
        p for p in pipeline.model_packages() if p["CustomerMetadataProperties"]["TrainingJob"] == job
    ]
    return package


# --- accept ------------------------------------------------------------------------------------


def test_first_model_is_registered_approved_and_served_from_its_package(pipeline: TrainingPipeline) -> None:
    job = _train(pipeline, "genome-1")

    result = _finish(pipeline, job, eval_perplexity=3.6)

    assert result["outcome"] == "deployed" and result["endpoint_action"] == "created"
    package = _package(pipeline, job)
    assert package["ModelApprovalStatus"] == "Approved" and package["ModelPackageVersion"] == 1
    assert package["ApprovalDescription"].startswith("first model: nothing serves yet")
    metadata = package["CustomerMetadataProperties"]
    assert metadata["GateCheck"] == "first-model" and metadata["EvalPerplexity"] == "3.600000"
    assert "BaselineEvalPerplexity" not in metadata and metadata["WarmStartFrom"] == "none: a cold start"
    (read_set,) = pipeline.stack.read_sets()  # the one the import made
    assert (metadata["ReadSets"], metadata["ReadSetCount"]) == (read_set["id"], "1")  # data lineage
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == pipeline.describe_job(job)["ModelArtifacts"]["S3ModelArtifacts"]
    # The artifact carries its own code/ (inference.py + hyenadna): nothing is downloaded.
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    endpoint = pipeline.settled_endpoint()
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", job)
    assert pipeline.invoke() == {"model": job}  # the endpoint serves the job's model
    model = pipeline.stack.client("sagemaker").describe_model(ModelName=job)
    assert model["PrimaryContainer"]["ModelPackageName"] == package["ModelPackageArn"]
    assert pipeline.slot()["state"] == "idle"
    assert pipeline.stack.alerts() == []


def test_cold_start_no_better_than_uniform_is_not_deployed(pipeline: TrainingPipeline) -> None:
    job = _train(pipeline, "genome-1")

    result = _finish(pipeline, job, eval_perplexity=4.02)

    assert result["outcome"] == "rejected" and pipeline.endpoint() is None
    assert _package(pipeline, job)["CustomerMetadataProperties"]["GateCheck"] == "not-better-than-uniform"


def test_accepted_warm_start_updates_the_endpoint_blue_green_and_records_both_figures(
    pipeline: TrainingPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _serving_first_model(pipeline)
    second = _train(pipeline, "genome-2")
    pipeline.reload(monkeypatch, BAKE_SECONDS="1")  # a (short) bake under the alarms

    result = _finish(pipeline, second, eval_perplexity=3.4, baseline=3.6, seen=(3.55, 3.52))

    assert result["outcome"] == "deployed" and result["endpoint_action"] == "updated"
    assert (result["candidate"], result["baseline"]) == (3.4, 3.6)
    # The second job warm-started from the model that was serving when it began, without a
    # learning rate: train.py's warm-start defaults apply.
    hyperparameters = pipeline.describe_job(second)["HyperParameters"]
    assert hyperparameters["init_from"].endswith(f"{first}/output/model.tar.gz")
    assert "learning_rate" not in hyperparameters and "warmup_steps" not in hyperparameters
    # registry
    package = _package(pipeline, second)
    assert (package["ModelApprovalStatus"], package["ModelPackageVersion"]) == ("Approved", 2)
    metadata = package["CustomerMetadataProperties"]
    assert metadata["EvalPerplexity"] == "3.400000" and metadata["BaselineEvalPerplexity"] == "3.600000"
    assert (
        metadata["SeenBaselineEvalPerplexity"] == "3.550000" and metadata["SeenEvalPerplexity"] == "3.520000"
    )
    assert metadata["WarmStartFrom"] == hyperparameters["init_from"]
    assert "at most its baseline 3.6000" in package["ApprovalDescription"]
    # state table: the decision with both figures
    gate = pipeline.job_record(second)["gate"]
    assert (gate["decision"], gate["check"], gate["candidate"], gate["baseline"]) == (
        "Approved",
        "beats-baseline",
        3.4,
        3.6,
    )
    # blue/green update under the rollback alarms
    (update,) = pipeline.update_endpoint_requests
    assert update["EndpointConfigName"] == second
    policy = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert policy["TrafficRoutingConfiguration"]["WaitIntervalInSeconds"] == 1  # BAKE_SECONDS
    alarms = [a["AlarmName"] for a in update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == ROLLBACK_ALARMS
    endpoint = pipeline.settled_endpoint()
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", second)
    assert pipeline.invoke() == {"model": second}
    assert pipeline.stack.alerts() == []


# --- refuse ------------------------------------------------------------------------------------


def _assert_refused_and_untouched(
    pipeline: TrainingPipeline, job: str, serving: str, check: str
) -> dict[str, Any]:
    """Registered Rejected with the reason, in the state table, alerted; the endpoint untouched."""
    package = _package(pipeline, job)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["CustomerMetadataProperties"]["GateCheck"] == check
    reason = package["ApprovalDescription"]
    gate = pipeline.job_record(job)["gate"]
    assert (gate["decision"], gate["check"], gate["reason"]) == ("Rejected", check, reason)
    (alert,) = pipeline.stack.alerts()
    assert f"model from {job} not deployed" in alert["subject"]
    assert alert["details"]["reason"] == reason and alert["details"]["decision"] == "Rejected"
    assert alert["details"]["modelPackage"] == package["ModelPackageArn"]
    assert pipeline.update_endpoint_requests == []
    assert pipeline.settled_endpoint()["EndpointConfigName"] == serving
    sagemaker = pipeline.stack.client("sagemaker")
    assert job not in {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    assert pipeline.slot()["state"] == "idle"
    return alert["details"]


def test_regressed_model_is_registered_rejected_and_the_endpoint_keeps_serving(
    pipeline: TrainingPipeline,
) -> None:
    first = _serving_first_model(pipeline)
    second = _train(pipeline, "genome-2")

    result = _finish(pipeline, second, eval_perplexity=3.62, baseline=3.6, seen=(3.55, 3.5))

    assert result["outcome"] == "rejected"
    details = _assert_refused_and_untouched(pipeline, second, first, "regressed")
    assert (details["candidateEvalPerplexity"], details["baselineEvalPerplexity"]) == (3.62, 3.6)
    assert "3.6200 is above its baseline 3.6000" in details["reason"]


def test_model_that_forgot_the_data_it_was_trained_on_is_refused_though_better_overall(
    pipeline: TrainingPipeline,
) -> None:
    first = _serving_first_model(pipeline)
    second = _train(pipeline, "genome-2")

    # Better overall (it learnt the new genome), but 5 % worse on the old one: over the 2 % tolerance.
    result = _finish(pipeline, second, eval_perplexity=3.4, baseline=3.6, seen=(3.5, 3.675))

    assert result["outcome"] == "rejected"
    details = _assert_refused_and_untouched(pipeline, second, first, "forgot-seen-data")
    assert (details["seenEvalPerplexity"], details["seenBaselineEvalPerplexity"]) == (3.675, 3.5)
    assert (details["candidateEvalPerplexity"], details["baselineEvalPerplexity"]) == (3.4, 3.6)


def test_a_cold_start_while_a_model_serves_cannot_be_compared_and_is_refused(
    pipeline: TrainingPipeline,
) -> None:
    first = _serving_first_model(pipeline)
    second = _train(pipeline, "genome-2")

    result = _finish(pipeline, second, eval_perplexity=3.1, baseline=None)  # no [best] baseline

    assert result["outcome"] == "rejected"
    _assert_refused_and_untouched(pipeline, second, first, "no-baseline")


def test_job_without_best_metrics_is_registered_rejected_and_not_deployed(pipeline: TrainingPipeline) -> None:
    job = _train(pipeline, "genome-1")

    result = _finish(pipeline, job, eval_perplexity=None)

    assert result["outcome"] == "rejected"
    assert pipeline.endpoint() is None
    assert _package(pipeline, job)["CustomerMetadataProperties"]["GateCheck"] == "no-metric"


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_failed_or_stopped_job_alerts_registers_nothing_and_leaves_the_endpoint_untouched(
    pipeline: TrainingPipeline, status: str
) -> None:
    first = _serving_first_model(pipeline, eval_perplexity=3.5)
    second = _train(pipeline, "genome-2")

    result = _finish(pipeline, second, status=status)

    assert result["outcome"] == "alerted"
    (alert,) = pipeline.stack.alerts()
    assert f"{second} {status}" in alert["subject"]
    if status == "Failed":  # why: the script's error, as SageMaker's FailureReason reports it
        assert "bad base" in alert["details"]["failureReason"]
    else:  # stopped by StopTrainingJob: SageMaker gives no FailureReason, the status says it
        assert alert["details"]["secondaryStatus"] == "Stopped"
    assert [p["CustomerMetadataProperties"]["TrainingJob"] for p in pipeline.model_packages()] == [first]
    assert pipeline.settled_endpoint()["EndpointConfigName"] == first
    assert pipeline.update_endpoint_requests == []
    assert pipeline.slot()["state"] == "idle"  # the next import can train again


# --- idempotency -------------------------------------------------------------------------------


def test_replayed_and_out_of_order_completion_events_deploy_once(pipeline: TrainingPipeline) -> None:
    first = _serving_first_model(pipeline, eval_perplexity=3.6)
    second = _train(pipeline, "genome-2")
    _finish(pipeline, second, eval_perplexity=3.4, baseline=3.6)

    replay_second = pipeline.deploy_model(pipeline.training_event(second))
    late_first = pipeline.deploy_model(pipeline.training_event(first))  # arrives after the newer deploy
    sagemaker = pipeline.stack.client("sagemaker")

    assert replay_second["outcome"] == "deployed"  # stored result, nothing redone
    assert late_first["outcome"] == "deployed"
    assert len(pipeline.update_endpoint_requests) == 1
    assert pipeline.settled_endpoint()["EndpointConfigName"] == second
    configs = sagemaker.list_endpoint_configs()["EndpointConfigs"]
    assert sorted(c["EndpointConfigName"] for c in configs) == sorted([first, second])
    assert len(pipeline.model_packages()) == 2


def _forget_that_the_job_was_handled(pipeline: TrainingPipeline, job: str) -> None:
    """What a crash after registering, before the job's end was recorded, leaves: no Powertools
    idempotency record and no `handled#` marker, only the registry's package."""
    from pipeline.state_table import TRAINING_JOB, PipelineState

    dynamodb = pipeline.stack.client("dynamodb")
    PipelineState(dynamodb, pipeline.stack.table).delete_marker(TRAINING_JOB, job)
    _expire_idempotency_records(pipeline)


def _expire_idempotency_records(pipeline: TrainingPipeline) -> None:
    """What a replay after the Powertools record's TTL finds: the job's own marker only."""
    assert pipeline.drop_idempotency_records() >= 1


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_replay_of_a_failed_job_past_the_idempotency_record_alerts_once(
    pipeline: TrainingPipeline, status: str
) -> None:
    # A failed job has no package in the registry to say it was handled: only deploy_model's own
    # `handled#training-job` marker keeps a replay after the record's TTL from alerting again.
    _serving_first_model(pipeline)
    second = _train(pipeline, "genome-2")
    assert _finish(pipeline, second, status=status)["outcome"] == "alerted"
    assert len(pipeline.stack.alerts()) == 1
    _expire_idempotency_records(pipeline)

    replay = pipeline.deploy_model(pipeline.training_event(second, status))

    assert replay["outcome"] == "already-handled"
    assert pipeline.stack.alerts() == []


def test_replay_with_its_records_cleared_registers_and_deploys_nothing_twice(
    pipeline: TrainingPipeline,
) -> None:
    first = _serving_first_model(pipeline)
    second = _train(pipeline, "genome-2")
    _finish(pipeline, second, eval_perplexity=3.4, baseline=3.6)
    _forget_that_the_job_was_handled(pipeline, second)

    replay = pipeline.deploy_model(pipeline.training_event(second))

    assert replay["outcome"] == "deployed" and replay["endpoint_action"] == "already-deployed"
    assert [p["ModelPackageVersion"] for p in pipeline.model_packages()] == [1, 2]
    assert len(pipeline.update_endpoint_requests) == 1
    assert pipeline.settled_endpoint()["EndpointConfigName"] == second
    assert pipeline.job_record(second)["gate"]["decision"] == "Approved"
    assert first != second


def test_replayed_refusal_with_its_records_cleared_is_not_registered_again(
    pipeline: TrainingPipeline,
) -> None:
    first = _serving_first_model(pipeline)
    second = _train(pipeline, "genome-2")
    _finish(pipeline, second, eval_perplexity=3.9, baseline=3.6)
    pipeline.stack.alerts()
    _forget_that_the_job_was_handled(pipeline, second)

    replay = pipeline.deploy_model(pipeline.training_event(second))

    assert replay["outcome"] == "rejected"
    assert [p["ModelApprovalStatus"] for p in pipeline.model_packages()] == ["Approved", "Rejected"]
    assert pipeline.settled_endpoint()["EndpointConfigName"] == first


def test_stale_completed_event_for_a_job_still_in_progress_deploys_nothing_until_it_ends(
    pipeline: TrainingPipeline,
) -> None:
    # An event that says Completed while DescribeTrainingJob still says InProgress (a stale or
    # misrouted event): deploy_model raises, so Lambda retries it, and records nothing, so the
    # retry after the job's real end deploys it, once.
    first = _serving_first_model(pipeline)
    second = _train(pipeline, "genome-2")
    assert pipeline.describe_job(second)["TrainingJobStatus"] == "InProgress"

    with pytest.raises(RuntimeError, match="InProgress according to DescribeTrainingJob"):
        pipeline.deploy_model(pipeline.stale_training_event(second, "Completed"))
    assert [p["CustomerMetadataProperties"]["TrainingJob"] for p in pipeline.model_packages()] == [first]
    assert pipeline.settled_endpoint()["EndpointConfigName"] == first

    assert _finish(pipeline, second, eval_perplexity=3.4, baseline=3.6)["outcome"] == "deployed"
    assert pipeline.deploy_model(pipeline.training_event(second))["outcome"] == "deployed"  # replay
    assert len(pipeline.update_endpoint_requests) == 1
    assert [p["ModelApprovalStatus"] for p in pipeline.model_packages()] == ["Approved", "Approved"]
    assert pipeline.settled_endpoint()["EndpointConfigName"] == second


def test_late_replay_of_an_older_approved_job_does_not_roll_the_endpoint_back(
    pipeline: TrainingPipeline,
) -> None:
    first = _serving_first_model(pipeline)
    second = _train(pipeline, "genome-2")
    _finish(pipeline, second, eval_perplexity=3.4, baseline=3.6)
    _forget_that_the_job_was_handled(pipeline, first)

    late_first = pipeline.deploy_model(pipeline.training_event(first))

    assert late_first["outcome"] == "superseded"
    assert pipeline.settled_endpoint()["EndpointConfigName"] == second
    assert len(pipeline.update_endpoint_requests) == 1


# --- follow-up and retries -----------------------------------------------------------------------


def test_imports_during_a_running_job_start_exactly_one_follow_up(pipeline: TrainingPipeline) -> None:
    running = _train(pipeline, "genome-1")
    waiting = [pipeline.import_reads(name) for name in ("genome-2", "genome-3", "genome-4")]
    for job_id in waiting:
        assert pipeline.start_training(pipeline.import_event(job_id))["outcome"] == "coalesced"
    assert pipeline.training_jobs() == [running]

    result = _finish(pipeline, running, eval_perplexity=3.5)
    pipeline.deploy_model(pipeline.training_event(running))  # duplicate delivery
    pipeline.start_training(pipeline.import_event(waiting[1], event_id="late-replay"))

    assert result["follow_up"]["outcome"] == "started"
    follow_up = result["follow_up"]["training_job"]
    assert follow_up == f"hyenaflow-{waiting[0]}"  # named after the first waiting import
    assert pipeline.training_jobs() == sorted([running, follow_up])
    created = [operation for operation, _ in pipeline.sagemaker_requests if operation == "CreateTrainingJob"]
    assert len(created) == 2  # the running job and its one follow-up, nothing tried again
    assert pipeline.slot()["state"] == "running" and not pipeline.slot()["pending"]
    # The follow-up warm-starts from the model that was just deployed.
    assert pipeline.describe_job(follow_up)["HyperParameters"]["init_from"].endswith(
        f"{running}/output/model.tar.gz"
    )


def test_endpoint_mid_update_raises_so_the_deploy_is_retried(pipeline: TrainingPipeline) -> None:
    # Given the second model's blue/green update still in flight (held: on AWS it takes minutes)
    _serving_first_model(pipeline)
    pipeline.stack.aws.hold_endpoint_updates()
    second = _train(pipeline, "genome-2")
    assert _finish(pipeline, second, eval_perplexity=3.5, baseline=3.6)["endpoint_action"] == "updated"
    third = _train(pipeline, "genome-3")  # warm-starts from the second model
    pipeline.end_job(third, "Completed", 3.4, baseline=3.5)
    endpoint = pipeline.endpoint()
    assert endpoint["EndpointStatus"] == "Updating"
    assert endpoint["PendingDeploymentSummary"]["EndpointConfigName"] == second

    # When the third job's end is handled, it raises (so Lambda retries it) ...
    with pytest.raises(Exception, match="Updating"):
        pipeline.deploy_model(pipeline.training_event(third))
    # ... and once the update has finished, the retry deploys the third model
    pipeline.stack.aws.release_endpoint_updates()
    assert pipeline.settled_endpoint()["EndpointConfigName"] == second
    retried = pipeline.deploy_model(pipeline.training_event(third))

    assert retried["endpoint_action"] == "updated"
    assert pipeline.settled_endpoint()["EndpointConfigName"] == third
    assert pipeline.invoke() == {"model": third}
    assert [p["ModelPackageVersion"] for p in pipeline.model_packages()] == [1, 2, 3]  # registered once
