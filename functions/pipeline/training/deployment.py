"""A training job ended: gate, register, deploy blue/green (or alert), then the coalesced follow-up.

A Completed job is judged by the quality gate (quality_gate.py) on its own figures, registered
as a model package with the decision (model_registry.py), and only an Approved package is
deployed (CreateModel from the package). A Failed or Stopped job has no model: nothing is
registered, an alert says why. Shared by the SageMaker event handler and the reconciler (lost
events).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from pipeline.aws_errors import is_already_exists, is_not_found
from pipeline.dependencies import Dependencies
from pipeline.state_table import TRAINING_JOB, Claim
from pipeline.training import model_registry
from pipeline.training.model_registry import DataLineage, RegisteredModel
from pipeline.training.quality_gate import GateFigures, quality_gate
from pipeline.training.read_set_origins import look_up_origins
from pipeline.training.settings import DeploySettings
from pipeline.training.slot import start_pending_follow_up

logger = Logger(child=True)

TERMINAL = {"Completed", "Failed", "Stopped"}
VARIANT_NAME = "AllTraffic"  # the alarms in template.yaml watch this variant
BUSY_ENDPOINT_STATES = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}


class EndpointBusyError(RuntimeError):
    """The endpoint is mid-deployment; raising lets Lambda (and then the reconciler) retry."""


DeployDeps = Dependencies[DeploySettings]


def handle_training_job_end(deps: DeployDeps, job_name: str) -> dict[str, Any]:
    if not job_name.startswith(f"{deps.settings.job_name_prefix}-"):
        return {"outcome": "ignored", "reason": "not a hyenaflow training job", "training_job": job_name}
    # The event may be stale or out of order: DescribeTrainingJob is the truth.
    job = deps.sagemaker.describe_training_job(TrainingJobName=job_name)
    status = job["TrainingJobStatus"]
    if status not in TERMINAL:
        # Never cache a "not finished" answer: raise so the event is retried (and reconciled).
        raise RuntimeError(
            f"training job {job_name} is {status} according to DescribeTrainingJob; retrying later"
        )
    if deps.state.marker(TRAINING_JOB, job_name) is not None:
        follow_up = start_pending_follow_up(deps)
        return {"outcome": "already-handled", "training_job": job_name, "follow_up": follow_up}

    if status == "Completed":
        result = gate_and_deploy(deps, job)
    else:
        deps.alert(
            f"hyenaflow: training job {job_name} {status}",
            {
                "trainingJob": job_name,
                "status": status,
                "failureReason": job.get("FailureReason"),
                "secondaryStatus": job.get("SecondaryStatus"),
                "endpoint": f"{deps.settings.endpoint_name} left untouched",
                "whatNext": "see the job's CloudWatch logs (/aws/sagemaker/TrainingJobs); new data starts a new job",
            },
        )
        result = {"outcome": "alerted", "training_job": job_name, "status": status}

    released = deps.state.release(
        job_name=job_name, marker=(TRAINING_JOB, job_name, {"status": status, "outcome": result["outcome"]})
    )
    if released is Claim.ALREADY_HANDLED:
        logger.info("another invocation handled this job concurrently", extra={"training_job": job_name})
    follow_up = start_pending_follow_up(deps)
    return {**result, "follow_up": follow_up}


def gate_and_deploy(deps: DeployDeps, job: dict[str, Any]) -> dict[str, Any]:
    """Decide, register the decision, deploy an Approved package. Safe to repeat: a package
    already registered for the job (a replay after a crash) is the decision."""
    settings = deps.settings
    job_name = job["TrainingJobName"]
    registered = model_registry.find_registered(
        deps.sagemaker, settings.model_package_group, job_name, job.get("CreationTime")
    )
    if registered is None:
        serving = deps.state.serving_model() or {}
        decision = quality_gate(
            GateFigures.from_training_job(job),
            serving_model_data_url=serving.get("model_data_url"),
            warm_start_model_data_url=(job.get("HyperParameters") or {}).get("init_from"),
            margin=settings.quality_gate_margin,
            forgetting_tolerance=settings.forgetting_tolerance,
        )
        registered = model_registry.register(
            deps.sagemaker,
            group=settings.model_package_group,
            training_job=job,
            decision=decision,
            lineage=lineage_of(deps, job),
            inference_image_uri=settings.inference_image_uri,
            endpoint_instance_type=settings.endpoint_instance_type,
        )
    else:
        registered = model_registry.describe_decision(deps.sagemaker, registered)
    gate = registered.gate_record()
    package = {"arn": registered.arn, "version": registered.version, "status": registered.approval_status}
    deps.state.record_gate_decision(job_name, gate, package)
    logger.info("quality gate", extra={"training_job": job_name, "model_package": package, **gate})
    summary = {
        "training_job": job_name,
        "decision": registered.approval_status,
        "reason": gate["reason"],
        "candidate": gate["candidate"],
        "baseline": gate["baseline"],
        "model_package": registered.arn,
    }
    if not registered.approved:
        serving = deps.state.serving_model() or {}
        deps.alert(
            f"hyenaflow: model from {job_name} not deployed",
            {
                "trainingJob": job_name,
                "decision": registered.approval_status,
                "reason": gate["reason"],
                "candidateEvalPerplexity": gate["candidate"],
                "baselineEvalPerplexity": gate["baseline"],
                "seenEvalPerplexity": gate["seen_candidate"],
                "seenBaselineEvalPerplexity": gate["seen_baseline"],
                "modelPackage": registered.arn,
                "servingModel": serving.get("model_name"),
                "endpoint": f"{settings.endpoint_name} left untouched",
            },
        )
        return {"outcome": "rejected", **summary}
    # A late replay of an older job must not roll the endpoint back: its package deploys only
    # over the model it was measured against (or over itself, when the deploy is repeated).
    serving_url = (deps.state.serving_model() or {}).get("model_data_url")
    if serving_url not in ((job.get("HyperParameters") or {}).get("init_from"), registered.model_data_url):
        logger.warning("a newer model serves; this approved package is not deployed", extra=summary)
        return {"outcome": "superseded", **summary}
    action = deploy(deps, job, registered, gate)
    return {"outcome": "deployed", "endpoint_action": action, **summary}


def lineage_of(deps: DeployDeps, job: dict[str, Any]) -> DataLineage:
    """What the job trained on: start_training's record of it, and what its read sets' tags say."""
    record = deps.state.training_job(job["TrainingJobName"])
    return DataLineage.of(job, record, look_up_origins(deps, (record or {}).get("read_set_ids")))


def deployment_config(settings: DeploySettings) -> dict[str, Any]:
    """Blue/green update with alarm-driven automatic rollback."""
    routing: dict[str, Any] = {
        "Type": settings.traffic_routing,
        "WaitIntervalInSeconds": settings.bake_seconds,
    }
    if settings.traffic_routing == "CANARY":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": settings.canary_percent}
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": settings.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": settings.max_deployment_seconds,
        }
    }
    if settings.rollback_alarm_names:
        config["AutoRollbackConfiguration"] = {
            "Alarms": [{"AlarmName": name} for name in settings.rollback_alarm_names]
        }
    return config


def _create_tolerating_existing(create: Callable[..., Any], **kwargs: Any) -> None:
    try:
        create(**kwargs)
    except ClientError as err:
        if not is_already_exists(err):
            raise


def describe_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as err:
        if is_not_found(err):
            return None
        raise


def deploy(deps: DeployDeps, job: dict[str, Any], registered: RegisteredModel, gate: dict[str, Any]) -> str:
    """CreateModel (from the Approved package) + CreateEndpointConfig + CreateEndpoint or
    UpdateEndpoint; safe to repeat."""
    settings = deps.settings
    job_name = job["TrainingJobName"]
    model_name = config_name = job_name  # derived from the job: replays reuse them
    _create_tolerating_existing(
        deps.sagemaker.create_model,
        ModelName=model_name,
        ExecutionRoleArn=settings.sagemaker_role_arn,
        # The package holds the image, the model data and the serving environment.
        PrimaryContainer={"ModelPackageName": registered.arn},
        Tags=[{"Key": "hyenaflow:training-job", "Value": job_name}],
    )
    _create_tolerating_existing(
        deps.sagemaker.create_endpoint_config,
        EndpointConfigName=config_name,
        ProductionVariants=[
            {
                "VariantName": VARIANT_NAME,
                "ModelName": model_name,
                "InitialInstanceCount": settings.endpoint_instance_count,
                "InstanceType": settings.endpoint_instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    endpoint = describe_endpoint(deps.sagemaker, settings.endpoint_name)
    if endpoint is None:
        deps.sagemaker.create_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName=config_name)
        action = "created"
    else:
        pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        if config_name in (endpoint.get("EndpointConfigName"), pending):
            action = "already-deployed"
        elif endpoint["EndpointStatus"] in BUSY_ENDPOINT_STATES:
            raise EndpointBusyError(
                f"endpoint {settings.endpoint_name} is {endpoint['EndpointStatus']}; "
                f"deploying {config_name} is retried by Lambda and then by the reconciler"
            )
        elif endpoint["EndpointStatus"] == "Failed":
            raise RuntimeError(
                f"endpoint {settings.endpoint_name} is Failed ({endpoint.get('FailureReason')}); delete it "
                "(aws sagemaker delete-endpoint --endpoint-name ...) and the reconciler deploys the new model"
            )
        else:
            deps.sagemaker.update_endpoint(
                EndpointName=settings.endpoint_name,
                EndpointConfigName=config_name,
                DeploymentConfig=deployment_config(settings),
            )
            action = "updated"
    deps.state.set_serving_model(
        {
            "model_name": model_name,
            "endpoint_config_name": config_name,
            "training_job_name": job_name,
            "model_package_arn": registered.arn,
            "model_data_url": registered.model_data_url or job["ModelArtifacts"]["S3ModelArtifacts"],
            "eval_perplexity": gate["candidate"],
            "baseline_eval_perplexity": gate["baseline"],
        }
    )
    logger.info(
        "model deployed",
        extra={
            "endpoint": settings.endpoint_name,
            "action": action,
            "model": model_name,
            "model_package": registered.arn,
        },
    )
    return action


def sync_serving_with_endpoint(deps: DeployDeps) -> dict[str, Any] | None:
    """Reconciler step: a blue/green update that rolled back leaves the previous config serving.

    The state must follow, or the quality gate and warm starts would use a model nobody serves.
    """
    serving = deps.state.serving_model()
    if not serving:
        return None
    endpoint = describe_endpoint(deps.sagemaker, deps.settings.endpoint_name)
    if endpoint is None or endpoint["EndpointStatus"] != "InService":
        return None
    actual = endpoint["EndpointConfigName"]
    if actual == serving.get("endpoint_config_name"):
        return None
    previous = serving.get("previous") or {}
    if previous.get("endpoint_config_name") != actual:
        logger.warning(
            "endpoint serves a config the pipeline did not deploy last; state left as is",
            extra={"endpoint_config": actual, "expected": serving.get("endpoint_config_name")},
        )
        return {"outcome": "unexpected-endpoint-config", "endpoint_config": actual}
    if not deps.state.restore_previous_serving_model(expected_model=serving["model_name"]):
        return None
    if serving.get("model_package_arn"):
        model_registry.reject_rolled_back(
            deps.sagemaker,
            serving["model_package_arn"],
            f"deployed, then rolled back by the endpoint {deps.settings.endpoint_name}: its alarms fired "
            f"during the blue/green bake; {previous.get('model_name')} serves again",
        )
    deps.alert(
        f"hyenaflow: deployment of {serving['model_name']} rolled back",
        {
            "endpoint": deps.settings.endpoint_name,
            "rolledBackModel": serving["model_name"],
            "servingAgain": previous.get("model_name"),
            "whatNext": "see the endpoint's rollback alarms (5xx / model latency) and its CloudWatch logs",
        },
    )
    return {"outcome": "rolled-back", "model": serving["model_name"], "serving": previous.get("model_name")}
