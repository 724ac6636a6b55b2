"""Harness for the start_training / deploy_model / reconcile integration tests (no tests here).

The handlers run in-process against a real moto server over HTTP (SageMaker, DynamoDB, SNS,
SQS, S3). moto has no HealthOmics, so `FakeOmicsService` answers the omics operations at
botocore's `before-send` hook: the request has been serialised by the real client, and the
client's real retry configuration (pipeline.aws_clients, standard mode) handles the throttling
it injects. moto's SageMaker has no UpdateEndpoint and completes jobs instantly, so the harness
adds UpdateEndpoint the same way and sets a job's end state (status, metrics) in moto's backend.
The model registry is moto's with the local emulation's fixes in front (lambda_env.moto_stack),
in a model package group created as template.yaml's ModelPackageGroup (Ref: its ARN).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from tests.support.lambda_env import REGION, LambdaContext, MotoStack, fresh_lambda_module, moto_stack

SEQUENCE_STORE_ID = "1234567890"
ACCOUNT = "123456789012"
STORE_S3_URI = f"s3://cr-0a1b2c3d4e5f6a7b-s3alias/{ACCOUNT}/sequenceStore/{SEQUENCE_STORE_ID}/"
ENDPOINT = "hyenaflow-test"
MODEL_PACKAGE_GROUP = "hyenaflow-models"
ROLLBACK_ALARMS = ["hyenaflow-endpoint-5xx", "hyenaflow-endpoint-latency"]


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def json_response(
    url: str, status: int, payload: dict[str, Any], error_type: str | None = None
) -> AWSResponse:
    data = json.dumps(payload, default=str).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return AWSResponse(url, status, headers, _Body(data))


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class FakeOmicsService:
    """The HealthOmics storage APIs the pipeline calls, answered in-process."""

    read_sets: dict[str, str] = field(default_factory=dict)  # id -> status
    import_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    activation_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    throttle: dict[str, int] = field(default_factory=dict)  # operation -> 429s still to send
    calls: list[str] = field(default_factory=list)  # every attempt, throttled ones included

    def attach(self, omics_client: Any) -> FakeOmicsService:
        omics_client.meta.events.register("before-send.omics", self._answer)
        return self

    def add_import_job(self, job_id: str, status: str, sources: list[dict[str, Any]] | None = None) -> None:
        self.import_jobs[job_id] = {
            "id": job_id,
            "sequenceStoreId": SEQUENCE_STORE_ID,
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/omics-import",
            "status": status,
            "creationTime": _now(),
            "completionTime": _now(),
            "sources": sources
            or [
                {
                    "sourceFiles": {"source1": f"s3://bucket/staged/{job_id}/part-0.fastq.gz"},
                    "sourceFileType": "FASTQ",
                    "status": "FINISHED",
                    "subjectId": "s",
                    "sampleId": "s",
                    "readSetId": f"9{job_id[1:]}",
                }
            ],
        }

    def finish_activations(self) -> None:
        for job in self.activation_jobs.values():
            job["status"] = "COMPLETED"
            for source in job["sources"]:
                self.read_sets[source["readSetId"]] = "ACTIVE"
                source["status"] = "FINISHED"

    def count(self, operation: str) -> int:
        return sum(1 for call in self.calls if call == operation)

    def _answer(self, request: Any, event_name: str, **_: Any) -> AWSResponse:
        operation = event_name.rsplit(".", 1)[-1]
        self.calls.append(operation)
        if self.throttle.get(operation, 0) > 0:
            self.throttle[operation] -= 1
            return json_response(request.url, 429, {"message": "Rate exceeded"}, "ThrottlingException")
        body = json.loads(request.body or b"{}")
        path = request.url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
        handler = getattr(self, "_" + re.sub(r"(?<!^)([A-Z])", r"_\1", operation).lower())
        status, payload = handler(path, body)
        error = payload.pop("__type", None)
        return json_response(request.url, status, payload, error)

    def _get_sequence_store(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {
            "id": SEQUENCE_STORE_ID,
            "arn": f"arn:aws:omics:{REGION}:{ACCOUNT}:sequenceStore/{SEQUENCE_STORE_ID}",
            "creationTime": _now(),
            "status": "ACTIVE",
            "s3Access": {
                "s3Uri": STORE_S3_URI,
                "s3AccessPointArn": f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{SEQUENCE_STORE_ID}-abc",
            },
        }

    def _list_read_sets(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        wanted = body.get("filter", {}).get("status")
        items = [
            {
                "id": read_set_id,
                "arn": f"arn:aws:omics:{REGION}:{ACCOUNT}:sequenceStore/{SEQUENCE_STORE_ID}/readSet/{read_set_id}",
                "sequenceStoreId": SEQUENCE_STORE_ID,
                "status": status,
                "fileType": "FASTQ",
                "creationTime": _now(),
            }
            for read_set_id, status in self.read_sets.items()
            if wanted in (None, status)
        ]
        return 200, {"readSets": items}

    def _get_read_set_import_job(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job_id = path.rsplit("/", 1)[-1]
        if job_id not in self.import_jobs:
            return 404, {"__type": "ResourceNotFoundException", "message": f"import job {job_id} not found"}
        return 200, self.import_jobs[job_id]

    def _list_read_set_import_jobs(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        wanted = body.get("filter", {}).get("status")
        jobs = [
            {k: v for k, v in job.items() if k != "sources"}
            for job in self.import_jobs.values()
            if wanted in (None, job["status"])
        ]
        return 200, {"importJobs": jobs}

    def _start_read_set_activation_job(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for job in self.activation_jobs.values():
            if job["token"] == body["clientToken"]:
                break
        else:
            job_id = str(7_000_000_000 + len(self.activation_jobs))
            job = {
                "id": job_id,
                "token": body["clientToken"],
                "status": "IN_PROGRESS",
                "sources": [{"readSetId": s["readSetId"], "status": "IN_PROGRESS"} for s in body["sources"]],
            }
            self.activation_jobs[job_id] = job
            for source in body["sources"]:
                self.read_sets[source["readSetId"]] = "ACTIVATING"
        return 200, {
            "id": job["id"],
            "sequenceStoreId": SEQUENCE_STORE_ID,
            "status": "SUBMITTED",
            "creationTime": _now(),
        }

    def _get_read_set_activation_job(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job = self.activation_jobs[path.rsplit("/", 1)[-1]]
        return 200, {
            "id": job["id"],
            "sequenceStoreId": SEQUENCE_STORE_ID,
            "status": job["status"],
            "creationTime": _now(),
            "sources": job["sources"],
        }


@dataclass
class Pipeline:
    """One moto server + fake HealthOmics + the three handlers, wired like template.yaml wires them."""

    stack: MotoStack
    omics: FakeOmicsService
    sagemaker_throttle: dict[str, int] = field(default_factory=dict)
    create_training_calls: list[str] = field(default_factory=list)
    update_endpoint_calls: list[dict[str, Any]] = field(default_factory=list)
    modules: dict[str, Any] = field(default_factory=dict)

    # -- events ------------------------------------------------------------------------
    @staticmethod
    def import_event(job_id: str, status: str = "COMPLETED", event_id: str | None = None) -> dict[str, Any]:
        name = "omics_import_failed.json" if status == "FAILED" else "omics_import_completed.json"
        event = json.loads((_events_dir() / name).read_text())
        event["detail"].update({"id": job_id, "status": status})
        if event_id:
            event["id"] = event_id
        return event

    @staticmethod
    def training_event(job_name: str, status: str = "Completed") -> dict[str, Any]:
        name = {
            "Completed": "sagemaker_training_completed.json",
            "Failed": "sagemaker_training_failed.json",
        }.get(status, "sagemaker_training_stopped.json")
        event = json.loads((_events_dir() / name).read_text())
        event["detail"].update({"TrainingJobName": job_name, "TrainingJobStatus": status})
        return event

    # -- invoking the handlers -----------------------------------------------------------
    def start_training(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.modules["start"].lambda_handler(copy.deepcopy(event), LambdaContext("start-training"))

    def deploy_model(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.modules["deploy"].lambda_handler(copy.deepcopy(event), LambdaContext("deploy-model"))

    def reconcile(self) -> dict[str, Any]:
        event = json.loads((_events_dir() / "schedule_reconcile.json").read_text())
        return self.modules["reconcile"].lambda_handler(event, LambdaContext("reconcile"))

    # -- SageMaker as the tests see it -----------------------------------------------------
    def training_jobs(self) -> list[str]:
        summaries = self.stack.client("sagemaker").list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
        return sorted(job["TrainingJobName"] for job in summaries)

    def describe_job(self, name: str) -> dict[str, Any]:
        return self.stack.client("sagemaker").describe_training_job(TrainingJobName=name)

    def end_job(
        self,
        name: str,
        status: str = "Completed",
        eval_perplexity: float | None = 3.5,
        baseline: float | None = None,
        seen: tuple[float, float] | None = None,
    ) -> None:
        """Give a moto training job the end state a real one would have: FinalMetricDataList
        with the last value of each metric, the `[best]` line's among them. `seen` is (baseline,
        candidate) on the data the starting model was trained on."""
        job = _sagemaker_backend().training_jobs[name]
        job.training_job_status = status
        job.secondary_status = status
        if status != "Completed":
            job.failure_reason = "AlgorithmError: train.py exited with 1"
        metrics: dict[str, float] = {}
        if eval_perplexity is not None:
            metrics |= {"eval:perplexity": eval_perplexity + 0.01, "best:eval_perplexity": eval_perplexity}
            metrics["best:step"] = 100
        if baseline is not None:
            metrics["best:baseline_eval_perplexity"] = baseline
        if seen is not None:
            metrics["best:seen_baseline_eval_perplexity"], metrics["best:seen_eval_perplexity"] = seen
        job.final_metric_data_list = [
            {"MetricName": metric, "Value": value, "Timestamp": datetime.now(UTC)}
            for metric, value in metrics.items()
        ]

    def model_packages(self) -> list[dict[str, Any]]:
        """The registry's packages of the group, oldest first, as DescribeModelPackage shows them."""
        sagemaker = self.stack.client("sagemaker")
        summaries = sagemaker.list_model_packages(
            ModelPackageGroupName=MODEL_PACKAGE_GROUP, SortBy="CreationTime", SortOrder="Ascending"
        )["ModelPackageSummaryList"]
        return [sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]

    def job_record(self, name: str) -> dict[str, Any] | None:
        """The state table's record of a training job (lineage and gate decision)."""
        from pipeline.state_table import PipelineState

        return PipelineState(self.stack.client("dynamodb"), self.stack.table).training_job(name)

    def endpoint(self) -> dict[str, Any] | None:
        try:
            return self.stack.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
        except self.stack.client("sagemaker").exceptions.ClientError:
            return None

    def slot(self) -> dict[str, Any]:
        from pipeline.state_table import PipelineState

        return PipelineState(self.stack.client("dynamodb"), self.stack.table).slot().__dict__

    # -- the botocore hooks ----------------------------------------------------------------
    def _sagemaker_before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        if self.sagemaker_throttle.get(operation, 0) > 0:
            self.sagemaker_throttle[operation] -= 1
            return json_response(
                request.url, 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
            )
        if operation == "CreateTrainingJob":
            self.create_training_calls.append(json.loads(request.body)["TrainingJobName"])
        if operation == "UpdateEndpoint":
            # moto 5.2.5 has no UpdateEndpoint: switch the endpoint's config like a finished update.
            body = json.loads(request.body)
            self.update_endpoint_calls.append(body)
            _sagemaker_backend().endpoints[body["EndpointName"]].endpoint_config_name = body[
                "EndpointConfigName"
            ]
            arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{body['EndpointName']}"
            return json_response(request.url, 200, {"EndpointArn": arn})
        return None


def _job_starts_in_progress(parsed: dict[str, Any], **_: Any) -> None:
    # moto completes a job the moment it is created; a real one runs for hours. end_job() ends it.
    job = _sagemaker_backend().training_jobs[parsed["TrainingJobArn"].rsplit("/", 1)[-1]]
    job.training_job_status = "InProgress"
    job.secondary_status = "Training"


def _events_dir() -> Any:
    from tests.support.lambda_env import EVENTS

    return EVENTS


def _sagemaker_backend() -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT][REGION]


def pipeline_env(stack: MotoStack, model_package_group: str = MODEL_PACKAGE_GROUP) -> dict[str, str]:
    return {
        "STATE_TABLE": stack.table,
        "ALERT_TOPIC_ARN": stack.topic_arn,
        "DATA_BUCKET": stack.bucket,
        "SEQUENCE_STORE_ID": SEQUENCE_STORE_ID,
        "SAGEMAKER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/hyenaflow-sagemaker",
        "TRAINING_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2.13-cu133-amzn2023-sagemaker",
        "TRAINING_SOURCE_URI": f"s3://{stack.bucket}/code/training/sourcedir.tar.gz",
        "INFERENCE_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu-py312",
        "ENDPOINT_NAME": ENDPOINT,
        "MODEL_PACKAGE_GROUP": model_package_group,
        "JOB_NAME_PREFIX": "hyenaflow",
        "ROLLBACK_ALARM_NAMES": ",".join(ROLLBACK_ALARMS),
        "OMICS_TPS": "1000",
        "AWS_MAX_ATTEMPTS": "3",  # keeps the retries-exhausted test short
        "USE_SPOT": "true",
        "MAX_RUNTIME_SECONDS": "3600",
        "POWERTOOLS_SERVICE_NAME": "hyenaflow",
        "POWERTOOLS_METRICS_NAMESPACE": "hyenaflow",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_REGION": REGION,
    }


@pytest.fixture(name="pipeline")
def pipeline_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()  # moto's backends live in this process and outlive each server
    with moto_stack(model_registry=True) as stack:
        group_arn = stack.client("sagemaker").create_model_package_group(
            ModelPackageGroupName=MODEL_PACKAGE_GROUP
        )["ModelPackageGroupArn"]
        for name, value in pipeline_env(stack, group_arn).items():
            monkeypatch.setenv(name, value)
        # Each handler reads its settings once, at import: reloading it reads this environment.
        modules = {
            "start": fresh_lambda_module("start_training.handler"),
            "deploy": fresh_lambda_module("deploy_model.handler"),
            "reconcile": fresh_lambda_module("reconcile.handler"),
        }
        from pipeline import aws_clients

        harness = Pipeline(stack=stack, omics=FakeOmicsService(), modules=modules)
        harness.omics.attach(aws_clients.client("omics"))
        sagemaker = aws_clients.client("sagemaker")
        sagemaker.meta.events.register("before-send.sagemaker", harness._sagemaker_before_send)
        sagemaker.meta.events.register("after-call.sagemaker.CreateTrainingJob", _job_starts_in_progress)
        yield harness
