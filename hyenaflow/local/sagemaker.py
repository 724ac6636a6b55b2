"""SageMaker where moto falls short, as WSGI middleware in front of moto's server.

moto 5.2.5 marks a training job Completed the moment it is created, has no StopTrainingJob or
UpdateEndpoint, overwrites a job's MetricDefinitions, accepts duplicate job names and answers
InvokeEndpoint with canned data. This layer intercepts those operations (by X-Amz-Target, and
by the runtime's `/endpoints/<name>/invocations` path), lets moto keep the records - so
Describe*/List* stay moto's - and drives their state from real local processes:

- CreateTrainingJob: refuses a duplicate name (ResourceInUse), then runs the job locally
  (sagemaker_training.py): InProgress -> Completed | Failed | Stopped, with FinalMetricDataList,
  FailureReason and model.tar.gz, and "SageMaker Training Job State Change" events.
- StopTrainingJob: Stopping -> Stopped.
- CreateEndpoint / UpdateEndpoint / DeleteEndpoint: inference server subprocesses
  (sagemaker_endpoints.py), Creating -> InService | Failed, Updating -> InService (blue/green).
- sagemaker-runtime InvokeEndpoint: proxied to the endpoint's server; a 4xx/5xx from the model
  becomes a ModelError (HTTP 424), as the real runtime returns.
Every other SageMaker call goes to moto unchanged.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from hyenaflow.local.moto_server import (
    EventBus,
    WsgiApp,
    account_for,
    call_app,
    json_error,
    read_body,
    request_scope,
    respond,
)
from hyenaflow.local.sagemaker_endpoints import (
    DEFAULT_SERVE_SCRIPT,
    STARTUP_TIMEOUT_S,
    Deployment,
    DeploymentFailed,
    start_deployment,
)
from hyenaflow.local.sagemaker_training import DEFAULT_TRAINING_CODE_DIR, LogCallback, TrainingRun

TRAINING_EVENT = "SageMaker Training Job State Change"
ENDPOINT_EVENT = "SageMaker Endpoint State Change"
_INVOCATIONS = re.compile(r"^/endpoints/([^/]+)/invocations/?$")
Key = tuple[str, str, str]  # (account, region, name)


def _epoch_ms(value: Any) -> Any:
    """Event payloads carry timestamps as epoch milliseconds, as SageMaker's events do."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _epoch_ms(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_epoch_ms(v) for v in value]
    return value


@functools.cache
def _instance_types(shape: str) -> frozenset[str]:
    """The instance types AWS accepts, from botocore's SageMaker model (moto's lists are older)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for(shape).enum)


def use_botocore_instance_types() -> None:
    """Validate endpoint-config instance types against botocore's (current) enum.

    moto 5.2.5's FakeEndpointConfig checks a hard-coded list that predates ml.g5/ml.g6/ml.p4d/
    ml.p5, so the pipeline's GPU endpoint configs would be refused. The real list lives in
    botocore's service model; a class-level replacement is acceptable because moto is pinned
    (moto_server.SUPPORTED_MOTO_VERSION) and the local stack owns this process.
    """
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpointConfig

    def validate_instance_type(self: Any, instance_type: str) -> None:
        if instance_type not in _instance_types("ProductionVariantInstanceType"):
            raise ValidationError(
                message=f"Value '{instance_type}' at 'instanceType' failed to satisfy constraint: "
                "Member must satisfy enum value set (ProductionVariantInstanceType)"
            )

    FakeEndpointConfig.validate_instance_type = validate_instance_type  # type: ignore[method-assign]


class SageMakerGapFill:
    """WSGI app: handles the intercepted SageMaker operations, passes the rest downstream."""

    def __init__(
        self,
        downstream: WsgiApp,
        workdir: Path,
        events: EventBus,
        serve_script: Path | None = None,
        training_code_dir: Path | None = None,
        log_callback: LogCallback | None = None,
        endpoint_startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> None:
        use_botocore_instance_types()
        self.downstream = downstream
        self.workdir = Path(workdir)
        self.events = events
        self.serve_script = Path(serve_script or DEFAULT_SERVE_SCRIPT)
        self.training_code_dir = Path(training_code_dir or DEFAULT_TRAINING_CODE_DIR)
        self.log_callback = log_callback
        self.endpoint_startup_timeout_s = endpoint_startup_timeout_s
        self.endpoint_url = ""  # set once the server is bound
        self.runs: dict[Key, TrainingRun] = {}
        self.deployments: dict[Key, Deployment] = {}
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._session = boto3.session.Session()
        self._clients: dict[tuple[str, str], Any] = {}
        self._operations: dict[str, Callable[..., Any]] = {
            "CreateTrainingJob": self._create_training_job,
            "StopTrainingJob": self._stop_training_job,
            "CreateModel": self._refuse_existing("ModelName", "_models", "model"),
            "CreateEndpointConfig": self._refuse_existing(
                "EndpointConfigName", "endpoint_configs", "endpoint configuration"
            ),
            "CreateEndpoint": self._create_endpoint,
            "UpdateEndpoint": self._update_endpoint,
            "DeleteEndpoint": self._delete_endpoint,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        access_key, region, service = request_scope(environ)
        if service == "sagemaker":
            account = account_for(access_key)
            invocation = _INVOCATIONS.match(environ.get("PATH_INFO", ""))
            if invocation:
                return self._invoke_endpoint(environ, start_response, account, region, invocation.group(1))
            operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
            if operation in self._operations:
                return self._operations[operation](environ, start_response, account, region)
        return self.downstream(environ, start_response)

    # --- helpers --------------------------------------------------------------------------------

    def _client(self, service: str, region: str) -> Any:
        """One client per (service, region), made under the lock: creating clients is not
        thread-safe in boto3, using one is; and loading the SageMaker model takes a second."""
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=region,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    config=Config(retries={"mode": "standard", "max_attempts": 3}),
                )
            return self._clients[key]

    def _aws_env(self, region: str) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    @staticmethod
    def _backend(account: str, region: str) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[account][region]

    def _background(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    @staticmethod
    def _forward(
        start_response: Callable[..., Any], status: int, headers: list[tuple[str, str]], body: bytes
    ) -> Any:
        kept = {k: v for k, v in headers if k.lower() not in ("content-length", "x-amzn-requestid")}
        return respond(start_response, status, body, kept)

    def _refuse_existing(self, name_field: str, registry: str, what: str) -> Callable[..., Any]:
        """Create* of a name that exists: AWS refuses it (moto 5.2.5 silently replaces it)."""

        def create(environ: dict[str, Any], start_response: Any, account: str, region: str) -> Any:
            name = json.loads(read_body(environ) or b"{}").get(name_field, "")
            with self._lock:  # check and create as one step: concurrent replays race otherwise
                existing = getattr(self._backend(account, region), registry).get(name)
                if existing is not None:
                    arn = existing.arn[0] if isinstance(existing.arn, tuple) else existing.arn
                    return json_error(
                        start_response,
                        "ValidationException",
                        f'Cannot create already existing {what} "{arn}".',
                    )
                status, headers, body = call_app(self.downstream, environ)
            return self._forward(start_response, status, headers, body)

        return create

    # --- training jobs --------------------------------------------------------------------------

    def _create_training_job(
        self, environ: dict[str, Any], start_response: Any, account: str, region: str
    ) -> Any:
        request = json.loads(read_body(environ) or b"{}")
        with self._lock:  # check and create as one step: concurrent replays race otherwise
            outcome = self._register_training_job(environ, start_response, account, region, request)
        if not isinstance(outcome, TrainingRun):
            return outcome  # refused: the error response
        # Outside the lock: event listeners may call back into this server.
        self._put_training_event(account, region, outcome.name)
        outcome.start()
        return respond(
            start_response,
            200,
            json.dumps({"TrainingJobArn": outcome.arn}).encode(),
            {"Content-Type": "application/x-amz-json-1.1"},
        )

    def _register_training_job(
        self, environ: dict[str, Any], start_response: Any, account: str, region: str, request: dict[str, Any]
    ) -> TrainingRun | Any:
        """Validate, let moto record the job, put it InProgress; a TrainingRun, or an error response."""
        name = request.get("TrainingJobName", "")
        backend = self._backend(account, region)
        if name in backend.training_jobs:
            return json_error(
                start_response,
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a training job "
                f"with this name already exists ({backend.training_jobs[name].arn})",
            )
        instance_type = (request.get("ResourceConfig") or {}).get("InstanceType")
        if instance_type and instance_type not in _instance_types("TrainingInstanceType"):
            return json_error(
                start_response,
                "ValidationException",
                f"Value '{instance_type}' at 'resourceConfig.instanceType' failed to satisfy constraint: "
                "Member must satisfy enum value set (TrainingInstanceType)",
            )
        status, headers, body = call_app(self.downstream, environ)
        if status != 200:
            return self._forward(start_response, status, headers, body)
        job = backend.training_jobs[name]
        # moto replaces the job's MetricDefinitions with a canned one and marks it Completed.
        job.algorithm_specification["MetricDefinitions"] = (request.get("AlgorithmSpecification") or {}).get(
            "MetricDefinitions", []
        )
        job.training_job_status, job.secondary_status = "InProgress", "Starting"
        job.training_end_time = None
        job.final_metric_data_list = []
        job.failure_reason = None
        job.secondary_status_transitions = [
            {"Status": "Starting", "StartTime": job.creation_time, "StatusMessage": "Preparing the local run"}
        ]
        run = TrainingRun(
            name=name,
            arn=job.arn,
            request=request,
            job_dir=self.workdir / "training" / name,
            s3=self._client("s3", region),
            aws_env=self._aws_env(region),
            training_code_dir=self.training_code_dir,
            on_status=lambda run, *change: self._training_status(account, region, run, *change),
            log_callback=self.log_callback,
        )
        self.runs[(account, region, name)] = run
        return run

    def _training_status(
        self, account: str, region: str, run: TrainingRun, status: str, secondary: str, reason: str | None
    ) -> None:
        job = self._backend(account, region).training_jobs.get(run.name)
        if job is None:
            return
        now = datetime.now(UTC)
        previous_status, previous_secondary = job.training_job_status, job.secondary_status
        if job.secondary_status_transitions:
            job.secondary_status_transitions[-1].setdefault("EndTime", now)
        if secondary != previous_secondary:
            job.secondary_status_transitions.append(
                {"Status": secondary, "StartTime": now, "StatusMessage": secondary}
            )
        job.training_job_status, job.secondary_status = status, secondary
        job.last_modified_time = now
        job.final_metric_data_list = run.metrics.final_metric_data_list()
        if reason:
            job.failure_reason = reason
        if status in ("Completed", "Failed", "Stopped"):
            job.training_end_time = now
        if status != previous_status:
            self._put_training_event(account, region, run.name)

    def _put_training_event(self, account: str, region: str, name: str) -> None:
        detail = _epoch_ms(self._backend(account, region).describe_training_job(name))
        self.events.put(account, region, "aws.sagemaker", TRAINING_EVENT, detail, [detail["TrainingJobArn"]])

    def _stop_training_job(
        self, environ: dict[str, Any], start_response: Any, account: str, region: str
    ) -> Any:
        name = json.loads(read_body(environ) or b"{}").get("TrainingJobName", "")
        job = self._backend(account, region).training_jobs.get(name)
        if job is None:
            return json_error(
                start_response, "ValidationException", f"Requested resource not found: training job {name}"
            )
        run = self.runs.get((account, region, name))
        if job.training_job_status == "Stopping":
            return respond(start_response, 200, b"{}", {"Content-Type": "application/x-amz-json-1.1"})
        if job.training_job_status != "InProgress" or run is None:
            return json_error(
                start_response,
                "ValidationException",
                f"The request was rejected because the training job is in status {job.training_job_status}.",
            )
        job.training_job_status, job.secondary_status = "Stopping", "Stopping"
        self._put_training_event(account, region, name)
        self._background(run.stop, f"stop-{name}")
        return respond(start_response, 200, b"{}", {"Content-Type": "application/x-amz-json-1.1"})

    # --- endpoints ----------------------------------------------------------------------------

    def _create_endpoint(
        self, environ: dict[str, Any], start_response: Any, account: str, region: str
    ) -> Any:
        request = json.loads(read_body(environ) or b"{}")
        name, config_name = request.get("EndpointName", ""), request.get("EndpointConfigName", "")
        backend = self._backend(account, region)
        with self._lock:  # check and create as one step: concurrent replays race otherwise
            if name in backend.endpoints:
                return json_error(
                    start_response,
                    "ValidationException",
                    f'Cannot create already existing endpoint "{backend.endpoints[name].arn}".',
                )
            status, headers, body = call_app(self.downstream, environ)
        if status != 200:
            return self._forward(start_response, status, headers, body)
        endpoint = backend.endpoints[name]
        endpoint.endpoint_status = "Creating"

        def deploy() -> None:
            try:
                deployment = self._start_deployment(account, region, name, config_name)
            except DeploymentFailed as error:
                endpoint.endpoint_status, endpoint.failure_reason = "Failed", str(error)[:1024]
                endpoint.last_modified_time = datetime.now(UTC)
                self._put_endpoint_event(account, region, name)
                return
            with self._lock:
                if self._closing.is_set() or backend.endpoints.get(name) is not endpoint:  # deleted meanwhile
                    deployment.stop()
                    return
                self.deployments[(account, region, name)] = deployment
            endpoint.endpoint_status, endpoint.last_modified_time = "InService", datetime.now(UTC)
            self._put_endpoint_event(account, region, name)

        self._background(deploy, f"deploy-{name}")
        return self._forward(start_response, status, headers, body)

    def _start_deployment(self, account: str, region: str, name: str, config_name: str) -> Deployment:
        with self._lock:
            count = sum(1 for _ in (self.workdir / "endpoints" / name).glob("deployment-*"))
        return start_deployment(
            sagemaker=self._client("sagemaker", region),
            s3=self._client("s3", region),
            endpoint_name=name,
            endpoint_config_name=config_name,
            directory=self.workdir / "endpoints" / name / f"deployment-{count + 1}-{config_name}",
            default_serve_script=self.serve_script,
            aws_env=self._aws_env(region),
            startup_timeout_s=self.endpoint_startup_timeout_s,
            cancelled=self._closing,
        )

    def _update_endpoint(
        self, environ: dict[str, Any], start_response: Any, account: str, region: str
    ) -> Any:
        request = json.loads(read_body(environ) or b"{}")
        name, config_name = request.get("EndpointName", ""), request.get("EndpointConfigName", "")
        backend = self._backend(account, region)
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            arn = f"arn:aws:sagemaker:{region}:{account}:endpoint/{name.lower()}"
            return json_error(start_response, "ValidationException", f'Could not find endpoint "{arn}".')
        if config_name not in backend.endpoint_configs:
            arn = f"arn:aws:sagemaker:{region}:{account}:endpoint-config/{config_name.lower()}"
            return json_error(
                start_response, "ValidationException", f'Could not find endpoint configuration "{arn}".'
            )
        if endpoint.endpoint_status != "InService":
            return json_error(
                start_response,
                "ValidationException",
                f'Cannot update in-progress endpoint "{endpoint.arn}" (status {endpoint.endpoint_status}).',
            )
        endpoint.endpoint_status, endpoint.last_modified_time = "Updating", datetime.now(UTC)
        # DescribeEndpoint shows the config being rolled out while the old one still serves.
        endpoint.pending_deployment_summary = {
            "EndpointConfigName": config_name,
            "StartTime": datetime.now(UTC),
        }
        self._put_endpoint_event(account, region, name)

        def blue_green() -> None:
            try:
                new = self._start_deployment(account, region, name, config_name)
            except DeploymentFailed as error:
                # The old deployment keeps serving, as SageMaker rolls back a failed update.
                endpoint.endpoint_status, endpoint.pending_deployment_summary = "InService", None
                reason = f"Update to {config_name} failed and was rolled back: {error}"
                endpoint.failure_reason = reason[:1024]
                endpoint.last_modified_time = datetime.now(UTC)
                self._put_endpoint_event(account, region, name)
                return
            with self._lock:
                old = self.deployments.get((account, region, name))
                self.deployments[(account, region, name)] = new
            endpoint.endpoint_config_name = config_name
            endpoint.production_variants = endpoint._process_production_variants(
                backend.endpoint_configs[config_name].production_variants
            )
            endpoint.failure_reason, endpoint.pending_deployment_summary = None, None
            endpoint.endpoint_status, endpoint.last_modified_time = "InService", datetime.now(UTC)
            self._put_endpoint_event(account, region, name)
            if old is not None:
                old.stop()

        self._background(blue_green, f"update-{name}")
        return respond(
            start_response,
            200,
            json.dumps({"EndpointArn": endpoint.arn}).encode(),
            {"Content-Type": "application/x-amz-json-1.1"},
        )

    def _delete_endpoint(
        self, environ: dict[str, Any], start_response: Any, account: str, region: str
    ) -> Any:
        name = json.loads(read_body(environ) or b"{}").get("EndpointName", "")
        status, headers, body = call_app(self.downstream, environ)
        if status == 200:
            with self._lock:
                deployment = self.deployments.pop((account, region, name), None)
            if deployment is not None:
                deployment.stop()
        return self._forward(start_response, status, headers, body)

    def _put_endpoint_event(self, account: str, region: str, name: str) -> None:
        endpoint = self._backend(account, region).endpoints.get(name)
        if endpoint is None:
            return
        detail = {
            "EndpointName": name,
            "EndpointArn": endpoint.arn,
            "EndpointConfigName": endpoint.endpoint_config_name,
            "EndpointStatus": endpoint.endpoint_status,
            "CreationTime": endpoint.creation_time,
            "LastModifiedTime": endpoint.last_modified_time,
            "ProductionVariants": endpoint.production_variants,
        }
        if endpoint.failure_reason:
            detail["FailureReason"] = endpoint.failure_reason
        self.events.put(account, region, "aws.sagemaker", ENDPOINT_EVENT, _epoch_ms(detail), [endpoint.arn])

    def _invoke_endpoint(
        self, environ: dict[str, Any], start_response: Any, account: str, region: str, name: str
    ) -> Any:
        body = read_body(environ)
        endpoint = self._backend(account, region).endpoints.get(name)
        with self._lock:
            deployment = self.deployments.get((account, region, name))
        if endpoint is None or deployment is None:
            return json_error(
                start_response, "ValidationError", f"Endpoint {name} of account {account} not found."
            )
        status, answer, content_type = deployment.invoke(
            body,
            environ.get("CONTENT_TYPE") or "application/json",
            environ.get("HTTP_ACCEPT") or "application/json",
        )
        if 200 <= status < 300:
            return respond(
                start_response,
                200,
                answer,
                {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": deployment.variant_name},
            )
        kind = "client" if 400 <= status < 500 else "server"
        original = answer.decode("utf-8", "replace")
        log_stream = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}"
        message = (
            f'Received {kind} error ({status}) from primary with message "{original}". '
            f"See {deployment.directory / 'server.log'} for more information."
        )
        error = {
            "__type": "ModelError",
            "message": message,
            "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            "OriginalStatusCode": status,
            "OriginalMessage": original,
            "LogStreamArn": log_stream,
        }
        return respond(
            start_response,
            424,
            json.dumps(error).encode(),
            {"Content-Type": "application/json", "x-amzn-ErrorType": "ModelError"},
        )

    # --- shutdown -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every training job and endpoint server this layer started."""
        with self._lock:
            self._closing.set()
            runs, deployments = list(self.runs.values()), list(self.deployments.values())
            self.deployments.clear()
        for run in runs:
            run.stop(timeout_s=5.0)
        for deployment in deployments:
            deployment.stop()
        for run in runs:
            run.join(15.0)
        for thread in list(self._threads):
            thread.join(15.0)
