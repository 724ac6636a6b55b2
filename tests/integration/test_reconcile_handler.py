"""reconcile on the local AWS server: lost events are handled late, never twice; a deployment the
endpoint rolled back is recorded (tests/support/training_pipeline.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hyenaflow.local import omics as omics_emulation
from hyenaflow.local import wait_for
from tests.support.training_pipeline import ENDPOINT, TrainingPipeline, pipeline_fixture  # noqa: F401


def outcomes(summary: dict) -> dict[str, str]:
    return {h["item"]: h["outcome"] for h in summary["handled"]}


def test_lost_import_event_is_trained_on_by_the_next_reconcile(pipeline: TrainingPipeline) -> None:
    job_id = pipeline.import_reads("phage")  # its aws.omics event never reaches start_training

    first = pipeline.reconcile()
    second = pipeline.reconcile()

    assert outcomes(first) == {f"import-job {job_id}": "started"}
    assert second["handled"] == []
    assert pipeline.training_jobs() == [f"hyenaflow-{job_id}"]


def test_reconcile_and_late_event_together_start_one_job(pipeline: TrainingPipeline) -> None:
    job_id = pipeline.import_reads("phage")

    pipeline.reconcile()
    late = pipeline.start_training(pipeline.import_event(job_id))  # the event shows up after all

    assert late["outcome"] == "already-handled"
    assert pipeline.training_jobs() == [f"hyenaflow-{job_id}"]


def test_lost_training_completion_is_deployed_and_frees_the_slot(pipeline: TrainingPipeline) -> None:
    first = pipeline.import_reads("phage")
    job = pipeline.start_training(pipeline.import_event(first))["training_job"]
    second = pipeline.import_reads("more-phage")
    pipeline.start_training(pipeline.import_event(second))  # coalesced behind the job
    pipeline.end_job(job, "Completed", eval_perplexity=3.5)  # its SageMaker event is lost

    summary = pipeline.reconcile()

    assert outcomes(summary)[f"training-job {job}"] == "deployed"
    assert pipeline.settled_endpoint()["EndpointConfigName"] == job
    assert pipeline.invoke() == {"model": job}  # the endpoint serves the job's model
    assert pipeline.training_jobs() == sorted([job, f"hyenaflow-{second}"])  # the follow-up started
    assert pipeline.reconcile()["handled"] == []


def test_lost_failed_import_alerts_once(pipeline: TrainingPipeline) -> None:
    job_id = pipeline.import_bad_reads("phage")

    pipeline.reconcile()
    pipeline.reconcile()

    (alert,) = pipeline.stack.alerts()
    assert (
        alert["details"]["failedSources"][0]["statusMessage"]
        == (pipeline.stack.import_job(job_id)["sources"][0]["statusMessage"])
    )
    assert pipeline.training_jobs() == []


def test_training_waits_for_reactivation_then_starts(pipeline: TrainingPipeline) -> None:
    old = pipeline.import_reads("old-phage")
    assert pipeline.start_training(pipeline.import_event(old))["outcome"] == "started"
    pipeline.end_job(f"hyenaflow-{old}", "Failed")
    pipeline.deploy_model(pipeline.training_event(f"hyenaflow-{old}", "Failed"))  # the slot is free again
    omics_emulation.archive_read_sets(pipeline.stack.sequence_store_id)
    omics_emulation.hold_jobs("activation")
    first = pipeline.import_reads("new-phage")
    assert pipeline.start_training(pipeline.import_event(first))["outcome"] == "activating"
    second = pipeline.import_reads("newer-phage")
    assert pipeline.start_training(pipeline.import_event(second))["outcome"] == "coalesced"

    waiting = pipeline.reconcile()
    omics_emulation.release_jobs()
    pipeline.wait_for_activations()
    started = pipeline.reconcile()

    assert outcomes(waiting) == {"activation": "still-activating"}
    assert outcomes(started)["activation"] == "started"
    assert pipeline.training_jobs() == sorted([f"hyenaflow-{old}", f"hyenaflow-{first}"])  # one new job
    assert pipeline.slot()["pending"] is True  # newer-phage waits for it
    assert len(pipeline.activation_jobs()) == 1


def test_failed_activation_alerts_once_and_is_retried_until_training_starts(
    pipeline: TrainingPipeline,
) -> None:
    old = pipeline.import_reads("old-phage")
    omics_emulation.archive_read_sets(pipeline.stack.sequence_store_id)
    omics_emulation.fail_activations(1, "Read set 1 could not be restored")
    omics_emulation.hold_jobs("activation")
    new = pipeline.import_reads("new-phage")
    pipeline.start_training(pipeline.import_event(new))
    (activation,) = pipeline.activation_jobs()
    omics_emulation.release_jobs()
    pipeline.wait_for_activations()

    failed = pipeline.reconcile()  # sees the failure, frees the slot, retries the activation
    pipeline.wait_for_activations()
    started = pipeline.reconcile()

    assert outcomes(failed) == {
        f"import-job {old}": "coalesced",
        "activation": "activation-failed",
        "follow-up": "activating",
    }
    (alert,) = pipeline.stack.alerts()
    assert "activation" in alert["subject"] and alert["details"]["activationJobId"] == activation
    assert alert["details"]["failedSources"][0]["statusMessage"] == "Read set 1 could not be restored"
    assert len(pipeline.activation_jobs()) == 2  # a new job, not the failed one again
    assert outcomes(started)["activation"] == "started"
    assert pipeline.training_jobs() == [f"hyenaflow-{new}"]


def test_broken_model_is_rolled_back_by_its_alarm_during_the_bake_and_reconcile_records_it(
    pipeline: TrainingPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose forward pass fails is deployed blue/green; during the bake its endpoint's
    5xx alarm fires and SageMaker rolls the endpoint back to the old config; reconcile records it.

    Simulated: the broken model is a stand-in inference server that answers every invocation
    with HTTP 500 (tests/support/training_pipeline.py), and the alarm's state is set by this
    test (SetAlarmState), because moto's CloudWatch stores alarms but evaluates no metric. Real:
    the blue/green update, the bake and the rollback (the SageMaker emulation reads the alarm
    named in AutoRollbackConfiguration during the WaitIntervalInSeconds bake), the endpoint's
    state and events, and the handlers.
    """
    # Given a first model serving, and a second, broken one that passed the quality gate
    pipeline.create_rollback_alarms()
    good_import = pipeline.import_reads("phage")
    good = pipeline.start_training(pipeline.import_event(good_import))["training_job"]
    pipeline.end_job(good, "Completed", eval_perplexity=3.6)
    assert pipeline.deploy_model(pipeline.training_event(good, "Completed"))["endpoint_action"] == "created"
    assert pipeline.settled_endpoint()["EndpointStatus"] == "InService"
    pipeline.stack.alerts()  # drain
    broken_import = pipeline.import_reads("more-phage")
    broken = pipeline.start_training(pipeline.import_event(broken_import))["training_job"]
    pipeline.end_job(broken, "Completed", eval_perplexity=3.4, baseline=3.6, broken_model=True)

    # When deploy_model updates the endpoint with a 10-minute bake
    pipeline.reload(monkeypatch, BAKE_SECONDS="600")
    assert pipeline.deploy_model(pipeline.training_event(broken, "Completed"))["endpoint_action"] == "updated"
    # the new deployment takes the traffic and fails it (Invocation5XXErrors) ...
    failure = wait_for(
        pipeline.invoke, "the broken model to take the traffic", 120, until=lambda a: "error" in a
    )
    assert "Received server error (500)" in failure["error"]
    assert pipeline.endpoint()["EndpointStatus"] == "Updating"  # baking
    # ... so CloudWatch puts the 5xx alarm in ALARM
    pipeline.stack.client("cloudwatch").set_alarm_state(
        AlarmName="hyenaflow-endpoint-5xx", StateValue="ALARM", StateReason="Invocation5XXErrors >= 1"
    )

    # Then the endpoint is back on the old config, InService, serving the good model
    endpoint = pipeline.settled_endpoint()
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", good)
    assert pipeline.invoke() == {"model": good}
    states = [
        (e["detail"]["EndpointStatus"], e["detail"]["EndpointConfigName"])
        for e in pipeline.stack.events("SageMaker Endpoint State Change", EndpointName=ENDPOINT)
    ]
    assert states[-2:] == [("Updating", good), ("InService", good)]
    # and reconcile records the rollback: the good model serves again in the state table
    summary = pipeline.reconcile()
    assert outcomes(summary) == {"endpoint": "rolled-back"}
    serving = pipeline.serving_model()
    assert (serving["model_name"], serving["rolled_back_from"]) == (good, broken)
    (alert,) = pipeline.stack.alerts()
    assert f"{broken} rolled back" in alert["subject"]
    assert pipeline.reconcile()["handled"] == []
    # The registry says so too: the rolled-back package is no longer Approved for deployment.
    first, second = pipeline.model_packages()
    assert first["ModelApprovalStatus"] == "Approved"
    assert second["ModelApprovalStatus"] == "Rejected" and "rolled back" in second["ApprovalDescription"]
    assert second["CustomerMetadataProperties"]["GateDecision"] == "Approved"  # what the gate said
    # The next job is gated against, and warm-starts from, what really serves.
    later = pipeline.import_reads("newest-phage")
    job = pipeline.start_training(pipeline.import_event(later))["training_job"]
    assert pipeline.describe_job(job)["HyperParameters"]["init_from"].endswith(f"{good}/output/model.tar.gz")


def test_lost_end_of_a_job_older_than_the_lookback_is_still_handled(pipeline: TrainingPipeline) -> None:
    from moto.sagemaker.models import sagemaker_backends

    job_id = pipeline.import_reads("phage")
    job = pipeline.start_training(pipeline.import_event(job_id))["training_job"]
    pipeline.end_job(job, "Completed", eval_perplexity=3.5)
    # A spot job that waited for capacity: created long before the reconciler's 72 h window.
    record = sagemaker_backends[pipeline.stack.aws.account_id][pipeline.stack.aws.region].training_jobs[job]
    record.creation_time = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=5)
    for import_job in pipeline.stack.import_jobs():  # its import is older too: handled long ago
        pipeline.start_training(pipeline.import_event(import_job["id"]))

    summary = pipeline.reconcile()

    assert outcomes(summary) == {"slot-job": "deployed"}
    assert pipeline.settled_endpoint()["EndpointConfigName"] == job
    assert pipeline.slot()["state"] == "idle"
