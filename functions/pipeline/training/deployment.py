"""A training job ended: gate, deploy blue/green (or alert), then start the coalesced follow-up.

Shared by the SageMaker event handler and the reconciler (lost events).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from pipeline.aws_errors import is_already_exists, is_not_found
from pipeline.dependencies import Dependencies
from pipeline.state_table import TRAINING_JOB, Claim
from pipeline.training.quality_gate import GateDecision, final_metric, quality_gate
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
    job_name = job["TrainingJobName"]
    serving = deps.state.serving_model()
    decision = quality_gate(
        final_metric(job), (serving or {}).get("eval_perplexity"), deps.settings.quality_gate_margin
    )
    logger.info(
        "quality gate",
        extra={"training_job": job_name, "accepted": decision.accepted, "reason": decision.reason},
    )
    if not decision.accepted:
        deps.alert(
            f"hyenaflow: model from {job_name} not deployed",
            {
                "trainingJob": job_name,
                "reason": decision.reason,
                "servingModel": (serving or {}).get("model_name"),
                "endpoint": f"{deps.settings.endpoint_name} left untouched",
            },
        )
        return {"outcome": "rejected", "training_job": job_name, "reason": decision.reason}
    action = deploy(deps, job, decision)
    return {
        "outcome": "deployed",
        "training_job": job_name,
        "endpoint_action": action,
        "reason": decision.reason,
    }


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


def deploy(deps: DeployDeps, job: dict[str, Any], decision: GateDecision) -> str:
    """CreateModel + CreateEndpointConfig + CreateEndpoint/UpdateEndpoint; safe to repeat."""
    settings = deps.settings
    job_name = job["TrainingJobName"]
    model_data_url = job["ModelArtifacts"]["S3ModelArtifacts"]
    model_name = config_name = job_name  # derived from the job: replays reuse them
    _create_tolerating_existing(
        deps.sagemaker.create_model,
        ModelName=model_name,
        ExecutionRoleArn=settings.sagemaker_role_arn,
        PrimaryContainer={
            "Image": settings.inference_image_uri,
            "ModelDataUrl": model_data_url,
            # The artifact carries its own code/ (inference.py + hyenadna): nothing is downloaded.
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            },
        },
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
            "model_data_url": model_data_url,
            "eval_perplexity": decision.candidate,
        }
    )
    logger.info(
        "model deployed", extra={"endpoint": settings.endpoint_name, "action": action, "model": model_name}
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
