"""reconcile against a moto server over HTTP: lost events are handled late, never twice."""

from __future__ import annotations

from tests.integration.test_start_training_harness import Pipeline, pipeline_fixture  # noqa: F401


def test_lost_import_event_is_trained_on_by_the_next_reconcile(pipeline: Pipeline) -> None:
    pipeline.omics.add_import_job("4000000001", "COMPLETED")  # its aws.omics event never arrived

    first = pipeline.reconcile()
    second = pipeline.reconcile()

    assert [h["item"] for h in first["handled"]] == ["import-job 4000000001"]
    assert second["handled"] == []
    assert pipeline.training_jobs() == ["hyenaflow-4000000001"]
    assert pipeline.create_training_calls == ["hyenaflow-4000000001"]


def test_reconcile_and_late_event_together_start_one_job(pipeline: Pipeline) -> None:
    pipeline.omics.add_import_job("4000000001", "COMPLETED")

    pipeline.reconcile()
    late = pipeline.start_training(pipeline.import_event("4000000001"))  # the event shows up after all

    assert late["outcome"] == "already-handled"
    assert pipeline.create_training_calls == ["hyenaflow-4000000001"]


def test_lost_training_completion_is_deployed_and_frees_the_slot(pipeline: Pipeline) -> None:
    pipeline.omics.add_import_job("4000000001", "COMPLETED")
    job = pipeline.start_training(pipeline.import_event("4000000001"))["training_job"]
    pipeline.omics.add_import_job("4000000002", "COMPLETED")
    pipeline.start_training(pipeline.import_event("4000000002"))  # coalesced behind the job
    pipeline.end_job(job, "Completed", eval_perplexity=3.5)  # its SageMaker event is lost

    summary = pipeline.reconcile()

    handled = {h["item"]: h for h in summary["handled"]}
    assert handled[f"training-job {job}"]["outcome"] == "deployed"
    assert pipeline.endpoint()["EndpointConfigName"] == job
    assert pipeline.training_jobs() == [job, "hyenaflow-4000000002"]  # the follow-up started
    assert pipeline.reconcile()["handled"] == []


def test_lost_failed_import_alerts_once(pipeline: Pipeline) -> None:
    pipeline.omics.add_import_job(
        "4000000002",
        "FAILED",
        sources=[
            {
                "sourceFiles": {"source1": "s3://b/staged/x.fastq.gz"},
                "status": "FAILED",
                "statusMessage": "bad",
            }
        ],
    )

    pipeline.reconcile()
    pipeline.reconcile()

    (alert,) = pipeline.stack.alerts()
    assert alert["details"]["failedSources"][0]["statusMessage"] == "bad"
    assert pipeline.training_jobs() == []


def test_training_waits_for_reactivation_then_starts(pipeline: Pipeline) -> None:
    pipeline.omics.read_sets.update({"5000000001": "ARCHIVED", "5000000002": "ACTIVE"})
    pipeline.omics.add_import_job("4000000001", "COMPLETED")
    assert pipeline.start_training(pipeline.import_event("4000000001"))["outcome"] == "activating"
    pipeline.omics.add_import_job("4000000002", "COMPLETED")
    assert pipeline.start_training(pipeline.import_event("4000000002"))["outcome"] == "coalesced"

    waiting = pipeline.reconcile()
    pipeline.omics.finish_activations()
    started = pipeline.reconcile()

    assert {h["item"]: h["outcome"] for h in waiting["handled"]} == {"activation": "still-activating"}
    assert {h["item"]: h["outcome"] for h in started["handled"]}["activation"] == "started"
    assert pipeline.training_jobs() == ["hyenaflow-4000000001"]  # one job; 4000000002 waits for it
    assert pipeline.slot()["pending"] is True
    assert len(pipeline.omics.activation_jobs) == 1


def test_failed_activation_alerts_once_and_is_retried_until_training_starts(pipeline: Pipeline) -> None:
    pipeline.omics.read_sets["5000000001"] = "ARCHIVED"
    pipeline.omics.add_import_job("4000000001", "COMPLETED")
    pipeline.start_training(pipeline.import_event("4000000001"))
    (activation,) = pipeline.omics.activation_jobs.values()
    activation["status"] = "FAILED"
    pipeline.omics.read_sets["5000000001"] = "ARCHIVED"

    failed = pipeline.reconcile()
    pipeline.reconcile()  # the retried activation is still running
    pipeline.omics.finish_activations()
    started = pipeline.reconcile()

    outcomes = {h["item"]: h["outcome"] for h in failed["handled"]}
    assert outcomes == {"activation": "activation-failed", "follow-up": "activating"}
    (alert,) = pipeline.stack.alerts()
    assert "activation" in alert["subject"] and alert["details"]["activationJobId"] == activation["id"]
    assert len(pipeline.omics.activation_jobs) == 2  # a new job, not the failed one again
    assert {h["item"]: h["outcome"] for h in started["handled"]}["activation"] == "started"
    assert pipeline.training_jobs() == ["hyenaflow-4000000001"]


def test_rolled_back_deployment_is_noticed_and_the_previous_model_serves_again(pipeline: Pipeline) -> None:
    from tests.integration.test_start_training_harness import ENDPOINT, _sagemaker_backend

    for import_job, perplexity, baseline in (("4000000001", 3.6, None), ("4000000002", 3.4, 3.6)):
        pipeline.omics.add_import_job(import_job, "COMPLETED")
        job = pipeline.start_training(pipeline.import_event(import_job))["training_job"]
        pipeline.end_job(job, "Completed", perplexity, baseline=baseline)
        assert pipeline.deploy_model(pipeline.training_event(job))["outcome"] == "deployed"
    pipeline.stack.alerts()
    # The alarms fired during the bake: SageMaker rolled the endpoint back to the first config.
    _sagemaker_backend().endpoints[ENDPOINT].endpoint_config_name = "hyenaflow-4000000001"

    summary = pipeline.reconcile()
    pipeline.reconcile()

    assert {h["item"]: h["outcome"] for h in summary["handled"]} == {"endpoint": "rolled-back"}
    (alert,) = pipeline.stack.alerts()
    assert "hyenaflow-4000000002 rolled back" in alert["subject"]
    # The registry says so too: the rolled-back package is no longer Approved for deployment.
    first, second = pipeline.model_packages()
    assert first["ModelApprovalStatus"] == "Approved"
    assert second["ModelApprovalStatus"] == "Rejected" and "rolled back" in second["ApprovalDescription"]
    assert second["CustomerMetadataProperties"]["GateDecision"] == "Approved"  # what the gate said
    # The next job is gated against, and warm-starts from, what really serves.
    pipeline.omics.add_import_job("4000000003", "COMPLETED")
    job = pipeline.start_training(pipeline.import_event("4000000003"))["training_job"]
    assert pipeline.describe_job(job)["HyperParameters"]["init_from"].endswith(
        "hyenaflow-4000000001/output/model.tar.gz"
    )


def test_lost_end_of_a_job_older_than_the_lookback_is_still_handled(pipeline: Pipeline) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.integration.test_start_training_harness import _sagemaker_backend

    pipeline.omics.add_import_job("4000000001", "COMPLETED")
    job = pipeline.start_training(pipeline.import_event("4000000001"))["training_job"]
    pipeline.end_job(job, "Completed", eval_perplexity=3.5)
    # A spot job that waited for capacity: created long before the reconciler's 72 h window.
    _sagemaker_backend().training_jobs[job].creation_time = datetime.now(UTC).replace(
        tzinfo=None
    ) - timedelta(days=5)

    summary = pipeline.reconcile()

    assert {h["item"]: h["outcome"] for h in summary["handled"]} == {"slot-job": "deployed"}
    assert pipeline.endpoint()["EndpointConfigName"] == job
    assert pipeline.slot()["state"] == "idle"
