"""deploy_model against a moto server over HTTP: quality gate, blue/green update, alerts, follow-up."""

from __future__ import annotations

import pytest

from tests.integration.test_start_training_harness import (  # noqa: F401
    ENDPOINT,
    ROLLBACK_ALARMS,
    Pipeline,
    pipeline_fixture,
)


def _train(pipeline: Pipeline, import_job_id: str) -> str:
    """An import completes and start_training starts its job; returns the job name."""
    pipeline.omics.add_import_job(import_job_id, "COMPLETED")
    result = pipeline.start_training(pipeline.import_event(import_job_id))
    assert result["outcome"] == "started", result
    return result["training_job"]


def _finish(
    pipeline: Pipeline, job: str, status: str = "Completed", eval_perplexity: float | None = 3.5
) -> dict:
    pipeline.end_job(job, status, eval_perplexity)
    return pipeline.deploy_model(pipeline.training_event(job, status))


def test_first_completed_job_creates_the_endpoint_serving_the_artifact_code(pipeline: Pipeline) -> None:
    job = _train(pipeline, "4000000001")

    result = _finish(pipeline, job, eval_perplexity=3.6)

    assert result["outcome"] == "deployed" and result["endpoint_action"] == "created"
    endpoint = pipeline.endpoint()
    assert endpoint is not None and endpoint["EndpointConfigName"] == job
    model = pipeline.stack.client("sagemaker").describe_model(ModelName=job)
    environment = model["PrimaryContainer"]["Environment"]
    assert environment["SAGEMAKER_PROGRAM"] == "inference.py"
    assert environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert (
        model["PrimaryContainer"]["ModelDataUrl"]
        == pipeline.describe_job(job)["ModelArtifacts"]["S3ModelArtifacts"]
    )
    assert pipeline.slot()["state"] == "idle"


def test_better_model_updates_the_endpoint_blue_green_with_alarm_rollback(pipeline: Pipeline) -> None:
    first = _train(pipeline, "4000000001")
    _finish(pipeline, first, eval_perplexity=3.6)
    second = _train(pipeline, "4000000002")

    result = _finish(pipeline, second, eval_perplexity=3.4)

    assert result["endpoint_action"] == "updated"
    (update,) = pipeline.update_endpoint_calls
    assert update["EndpointConfigName"] == second
    policy = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert policy["TrafficRoutingConfiguration"]["WaitIntervalInSeconds"] > 0
    alarms = [a["AlarmName"] for a in update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == ROLLBACK_ALARMS
    assert pipeline.endpoint()["EndpointConfigName"] == second
    # The second job warm-started from the model that was serving when it began.
    assert pipeline.describe_job(second)["HyperParameters"]["init_from"].endswith(
        f"{first}/output/model.tar.gz"
    )


def test_worse_model_is_rejected_and_the_endpoint_keeps_serving(pipeline: Pipeline) -> None:
    first = _train(pipeline, "4000000001")
    _finish(pipeline, first, eval_perplexity=3.5)
    pipeline.stack.alerts()  # drain
    second = _train(pipeline, "4000000002")

    result = _finish(pipeline, second, eval_perplexity=3.9)

    assert result["outcome"] == "rejected"
    assert pipeline.update_endpoint_calls == []
    assert pipeline.endpoint()["EndpointConfigName"] == first
    (alert,) = pipeline.stack.alerts()
    assert "not deployed" in alert["subject"] and "endpoint kept" in alert["details"]["reason"]
    assert pipeline.slot()["state"] == "idle"


def test_job_without_eval_perplexity_is_not_deployed(pipeline: Pipeline) -> None:
    job = _train(pipeline, "4000000001")

    result = _finish(pipeline, job, eval_perplexity=None)

    assert result["outcome"] == "rejected"
    assert pipeline.endpoint() is None


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_failed_or_stopped_job_alerts_and_leaves_the_endpoint_untouched(
    pipeline: Pipeline, status: str
) -> None:
    first = _train(pipeline, "4000000001")
    _finish(pipeline, first, eval_perplexity=3.5)
    pipeline.stack.alerts()
    second = _train(pipeline, "4000000002")

    result = _finish(pipeline, second, status=status)

    assert result["outcome"] == "alerted"
    (alert,) = pipeline.stack.alerts()
    assert f"{second} {status}" in alert["subject"]
    assert alert["details"]["failureReason"]
    assert pipeline.endpoint()["EndpointConfigName"] == first
    assert pipeline.update_endpoint_calls == []
    assert pipeline.slot()["state"] == "idle"  # the next import can train again


def test_replayed_and_out_of_order_completion_events_deploy_once(pipeline: Pipeline) -> None:
    first = _train(pipeline, "4000000001")
    _finish(pipeline, first, eval_perplexity=3.6)
    second = _train(pipeline, "4000000002")
    _finish(pipeline, second, eval_perplexity=3.4)

    replay_second = pipeline.deploy_model(pipeline.training_event(second))
    late_first = pipeline.deploy_model(pipeline.training_event(first))  # arrives after the newer deploy
    sagemaker = pipeline.stack.client("sagemaker")

    assert replay_second["outcome"] == "deployed"  # stored result, nothing redone
    assert late_first["outcome"] == "deployed"
    assert len(pipeline.update_endpoint_calls) == 1
    assert pipeline.endpoint()["EndpointConfigName"] == second
    assert sorted(c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]) == [
        first,
        second,
    ]


def test_imports_during_a_running_job_start_exactly_one_follow_up(pipeline: Pipeline) -> None:
    running = _train(pipeline, "4000000001")
    for later in ("4000000002", "4000000003", "4000000004"):
        pipeline.omics.add_import_job(later, "COMPLETED")
        assert pipeline.start_training(pipeline.import_event(later))["outcome"] == "coalesced"
    assert pipeline.training_jobs() == [running]

    result = _finish(pipeline, running, eval_perplexity=3.5)
    pipeline.deploy_model(pipeline.training_event(running))  # duplicate delivery
    pipeline.start_training(pipeline.import_event("4000000003", event_id="late-replay"))

    assert result["follow_up"]["outcome"] == "started"
    follow_up = result["follow_up"]["training_job"]
    assert follow_up == "hyenaflow-4000000002"  # named after the first waiting import
    assert pipeline.training_jobs() == sorted([running, follow_up])
    assert pipeline.create_training_calls == [running, follow_up]
    assert pipeline.slot()["state"] == "running" and not pipeline.slot()["pending"]
    # The follow-up warm-starts from the model that was just deployed.
    assert pipeline.describe_job(follow_up)["HyperParameters"]["init_from"].endswith(
        f"{running}/output/model.tar.gz"
    )


def test_endpoint_mid_update_raises_so_the_deploy_is_retried(pipeline: Pipeline) -> None:
    from tests.integration.test_start_training_harness import _sagemaker_backend

    first = _train(pipeline, "4000000001")
    _finish(pipeline, first, eval_perplexity=3.6)
    _sagemaker_backend().endpoints[ENDPOINT].endpoint_status = "Updating"
    second = _train(pipeline, "4000000002")
    pipeline.end_job(second, "Completed", 3.4)

    with pytest.raises(Exception, match="Updating"):
        pipeline.deploy_model(pipeline.training_event(second))
    _sagemaker_backend().endpoints[ENDPOINT].endpoint_status = "InService"
    retried = pipeline.deploy_model(pipeline.training_event(second))

    assert retried["endpoint_action"] == "updated"
    assert pipeline.endpoint()["EndpointConfigName"] == second
