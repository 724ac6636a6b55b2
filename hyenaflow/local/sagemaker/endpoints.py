"""SageMaker endpoints: CreateEndpoint, UpdateEndpoint (blue/green), DeleteEndpoint, served locally.

moto 5.2.5 puts an endpoint InService at once, has no UpdateEndpoint and silently replaces a model
or endpoint config created twice. Here moto keeps the records (so Describe*/List* stay moto's)
and each deployment is a real inference server (inference_server.py) on the config's model data
(model_data.py):

- CreateEndpoint: Creating -> InService once the server answers /ping, or Failed with a
  FailureReason when the model data cannot be fetched or the server does not come up.
- UpdateEndpoint: Updating while the old deployment keeps serving; the new one must come up
  before traffic moves to it and the old one is stopped. If it does not, the endpoint goes back
  to InService on the old config with FailureReason set, as SageMaker reports a failed update
  (botocore sagemaker model, EndpointMetadata.FailureReason: "If the status of the endpoint is
  Failed, or the status is InService but update operation fails, this provides the reason").
- Blue/green bake and auto-rollback (DeploymentConfig): once the new deployment is up it takes
  all the traffic and the baking period begins (TrafficRoutingConfiguration.WaitIntervalInSeconds;
  canary and linear shifting are not split locally: one server takes all traffic). During it the
  AutoRollbackConfiguration alarms are read from CloudWatch (moto's: it keeps alarm states but
  evaluates no metric, so a test sets one with SetAlarmState); if one is in ALARM, or the whole
  deployment outlasts MaximumExecutionTimeoutInSeconds, traffic goes back to the old deployment
  and the endpoint returns to InService on its OLD EndpointConfigName with FailureReason set.
  "If any alarms trip during the baking period, then an auto-rollback initiates and 100% of the
  traffic shifts back to the blue fleet" (SageMaker developer guide, "Use all at once traffic
  shifting"). After an alarm rollback AWS shows the old config and InService, and FailureReason
  may be empty (terraform-provider-aws #48997/#49020; /work/research/aws-facts.md C3): callers
  must compare EndpointConfigName, as the reconciler does. The old deployment is stopped
  TerminationWaitInSeconds after a successful bake.
- Test hook for what takes minutes on AWS: `hold_updates()` / `release_updates()` keep the
  UpdateEndpoints started from then on at Updating (the old deployment serving, the new config
  in PendingDeploymentSummary) until released, as a real blue/green update is for the time its
  new fleet takes to come up and bake; a test that needs an update in flight holds it.
- DeleteEndpoint stops the endpoint's server.
- CreateModel refuses a model package that does not exist or is not Approved, and a model made
  from a package serves the package's container (model_packages.py).
Each settled state puts a "SageMaker Endpoint State Change" event on the default bus.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hyenaflow.local.sagemaker.context import Key, Operation, SageMakerContext
from hyenaflow.local.sagemaker.inference_server import (
    DEFAULT_SERVE_SCRIPT,
    STARTUP_TIMEOUT_S,
    InferenceServer,
    InferenceServerFailed,
    start_inference_server,
)
from hyenaflow.local.sagemaker.model_data import ModelDataUnavailable, fetch_model_data
from hyenaflow.local.sagemaker.model_packages import ModelPackages
from hyenaflow.local.wsgi import forward, json_error, json_response, read_json

ENDPOINT_EVENT = "SageMaker Endpoint State Change"
FAILURE_REASON_MAX = 1024  # DescribeEndpoint FailureReason length limit (botocore: FailureReason)
ALARM_POLL_S = 0.2  # how often the bake reads the rollback alarms


def failure_reason(error: Exception) -> str:
    """The FailureReason of a deployment that did not come up."""
    if isinstance(error, ModelDataUnavailable | InferenceServerFailed):
        reason = str(error)
    else:  # a bug here, or a record moto lost, must still settle the endpoint, as AWS would
        reason = f"Internal error in the local emulation: {error!r}"
    return reason[:FAILURE_REASON_MAX]


def _endpoint_and_config(environ: dict[str, Any]) -> tuple[str, str]:
    """EndpointName and EndpointConfigName of a CreateEndpoint / UpdateEndpoint request."""
    request = read_json(environ)
    return request.get("EndpointName", ""), request.get("EndpointConfigName", "")


@dataclass(frozen=True)
class BlueGreenPolicy:
    """What an UpdateEndpoint's DeploymentConfig asks of the bake (botocore shapes
    BlueGreenUpdatePolicy, TrafficRoutingConfig, AutoRollbackConfig; AWS's defaults when absent)."""

    bake_s: float = 0.0  # TrafficRoutingConfiguration.WaitIntervalInSeconds
    termination_wait_s: float = 0.0  # TerminationWaitInSeconds (default 0)
    max_execution_s: float | None = None  # MaximumExecutionTimeoutInSeconds
    alarm_names: tuple[str, ...] = ()  # AutoRollbackConfiguration.Alarms

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> BlueGreenPolicy:
        config = request.get("DeploymentConfig") or {}
        policy = config.get("BlueGreenUpdatePolicy") or {}
        routing = policy.get("TrafficRoutingConfiguration") or {}
        alarms = (config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
        return cls(
            bake_s=float(routing.get("WaitIntervalInSeconds", 0)),
            termination_wait_s=float(policy.get("TerminationWaitInSeconds", 0)),
            max_execution_s=policy.get("MaximumExecutionTimeoutInSeconds"),
            alarm_names=tuple(alarm["AlarmName"] for alarm in alarms),
        )


class Endpoints:
    """The endpoint operations of one server and the inference servers behind its endpoints."""

    def __init__(self, context: SageMakerContext, model_packages: ModelPackages) -> None:
        self.context = context
        self.model_packages = model_packages
        self.servers: dict[Key, InferenceServer] = {}
        self._updates_released = threading.Event()
        self._updates_released.set()

    def hold_updates(self) -> None:
        """UpdateEndpoints from now on stay Updating, the old deployment serving (test hook)."""
        self._updates_released.clear()

    def release_updates(self) -> None:
        """Let held UpdateEndpoints go on: deploy, bake, switch (or roll back)."""
        self._updates_released.set()

    def operations(self) -> dict[str, Operation]:
        return {
            "CreateModel": self.model_packages.refusing_undeployable(
                self._refuse_existing("ModelName", "_models", "model")
            ),
            "CreateEndpointConfig": self._refuse_existing(
                "EndpointConfigName", "endpoint_configs", "endpoint configuration"
            ),
            "CreateEndpoint": self.create_endpoint,
            "UpdateEndpoint": self.update_endpoint,
            "DeleteEndpoint": self.delete_endpoint,
        }

    def server_for(self, account: str, region: str, name: str) -> InferenceServer | None:
        """The inference server taking the endpoint's traffic, if it is serving."""
        with self.context.lock:
            return self.servers.get((account, region, name))

    def _refuse_existing(self, name_field: str, registry: str, what: str) -> Operation:
        """Create* of a name that exists: AWS refuses it (moto 5.2.5 silently replaces it)."""

        def create(
            environ: dict[str, Any], start_response: Callable[..., Any], account: str, region: str
        ) -> Any:
            name = read_json(environ).get(name_field, "")
            with self.context.lock:  # check and create as one step: concurrent replays race otherwise
                existing = getattr(self.context.backend(account, region), registry).get(name)
                if existing is not None:
                    arn = existing.arn[0] if isinstance(existing.arn, tuple) else existing.arn
                    return json_error(
                        start_response,
                        "ValidationException",
                        f'Cannot create already existing {what} "{arn}".',
                    )
                status, headers, body = self.context.call_moto(environ)
            return forward(start_response, status, headers, body)

        return create

    # --- CreateEndpoint ---------------------------------------------------------------------

    def create_endpoint(
        self, environ: dict[str, Any], start_response: Callable[..., Any], account: str, region: str
    ) -> Any:
        name, config_name = _endpoint_and_config(environ)
        backend = self.context.backend(account, region)
        with self.context.lock:  # check and create as one step: concurrent replays race otherwise
            if name in backend.endpoints:
                return json_error(
                    start_response,
                    "ValidationException",
                    f'Cannot create already existing endpoint "{backend.endpoints[name].arn}".',
                )
            status, headers, body = self.context.call_moto(environ)
        if status != 200:
            return forward(start_response, status, headers, body)
        endpoint = backend.endpoints[name]
        endpoint.endpoint_status = "Creating"

        def deploy() -> None:
            try:
                server = self._deploy(account, region, name, config_name)
            except Exception as error:  # whatever went wrong, the endpoint settles Failed
                endpoint.endpoint_status, endpoint.failure_reason = "Failed", failure_reason(error)
                endpoint.last_modified_time = datetime.now(UTC)
                self._put_event(account, region, name)
                return
            with self.context.lock:
                if self.context.closing.is_set() or backend.endpoints.get(name) is not endpoint:
                    server.stop()  # the server shut down, or the endpoint was deleted meanwhile
                    return
                self.servers[(account, region, name)] = server
            endpoint.endpoint_status, endpoint.last_modified_time = "InService", datetime.now(UTC)
            self._put_event(account, region, name)

        self.context.background(deploy, f"deploy-{name}")
        return forward(start_response, status, headers, body)

    def _deploy(self, account: str, region: str, name: str, config_name: str) -> InferenceServer:
        """Fetch the config's model data and start its inference server in a new deployment dir."""
        sagemaker = self.context.client("sagemaker", region)
        variant = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"][0]
        model = sagemaker.describe_model(ModelName=variant["ModelName"])
        container = self.model_packages.container_for(
            account, region, model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        )
        if not container.get("ModelDataUrl"):
            raise ModelDataUnavailable(
                f"Model {variant['ModelName']} has no ModelDataUrl; nothing to serve locally"
            )
        with self.context.lock:
            count = sum(1 for _ in (self.context.workdir / "endpoints" / name).glob("deployment-*"))
            directory = self.context.workdir / "endpoints" / name / f"deployment-{count + 1}-{config_name}"
            directory.mkdir(parents=True)
        model_dir = fetch_model_data(self.context.client("s3", region), container["ModelDataUrl"], directory)
        return start_inference_server(
            model_dir=model_dir,
            container=container,
            endpoint_name=name,
            endpoint_config_name=config_name,
            variant_name=variant["VariantName"],
            directory=directory,
            default_serve_script=DEFAULT_SERVE_SCRIPT,
            aws_env=self.context.aws_env(region),
            processes=self.context.processes,
            startup_timeout_s=STARTUP_TIMEOUT_S,
            cancelled=self.context.closing,
        )

    # --- UpdateEndpoint -----------------------------------------------------------------------

    def update_endpoint(
        self, environ: dict[str, Any], start_response: Callable[..., Any], account: str, region: str
    ) -> Any:
        name, config_name = _endpoint_and_config(environ)
        policy = BlueGreenPolicy.from_request(read_json(environ))
        started = time.monotonic()
        backend = self.context.backend(account, region)
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
        self._put_event(account, region, name)

        def blue_green() -> None:
            while not self._updates_released.wait(ALARM_POLL_S):  # held by a test
                if self.context.closing.is_set():
                    return

            def rolled_back(reason: str) -> None:
                """The old deployment serves again; the endpoint says why (as SageMaker does)."""
                endpoint.endpoint_status, endpoint.pending_deployment_summary = "InService", None
                endpoint.failure_reason = reason[:FAILURE_REASON_MAX]
                endpoint.last_modified_time = datetime.now(UTC)
                self._put_event(account, region, name)

            try:
                new = self._deploy(account, region, name, config_name)
            except Exception as error:  # the old deployment keeps serving: SageMaker rolls back
                rolled_back(f"Update to {config_name} failed and was rolled back: {failure_reason(error)}")
                return
            with self.context.lock:  # all traffic to the new deployment: the bake begins
                old = self.servers.get((account, region, name))
                self.servers[(account, region, name)] = new
            why_not = self._bake(region, policy, started)
            if why_not is not None:  # auto-rollback: all traffic back to the old deployment
                with self.context.lock:
                    if old is not None:
                        self.servers[(account, region, name)] = old
                new.stop()
                rolled_back(f"Update to {config_name} was rolled back: {why_not}")
                return
            endpoint.endpoint_config_name = config_name
            endpoint.production_variants = endpoint._process_production_variants(
                backend.endpoint_configs[config_name].production_variants
            )
            endpoint.failure_reason, endpoint.pending_deployment_summary = None, None
            endpoint.endpoint_status, endpoint.last_modified_time = "InService", datetime.now(UTC)
            self._put_event(account, region, name)
            if old is not None:
                self.context.closing.wait(policy.termination_wait_s)
                old.stop()

        self.context.background(blue_green, f"update-{name}")
        return json_response(start_response, {"EndpointArn": endpoint.arn})

    def _bake(self, region: str, policy: BlueGreenPolicy, started: float) -> str | None:
        """Watch the rollback alarms for the baking period; why to roll back, or None."""
        bake_ends = time.monotonic() + policy.bake_s
        while True:
            alarm = self._alarm_in_alarm(region, policy.alarm_names)
            if alarm is not None:
                return f"CloudWatch alarm {alarm} went into ALARM during the baking period"
            if policy.max_execution_s is not None and time.monotonic() - started > policy.max_execution_s:
                return f"the deployment exceeded MaximumExecutionTimeoutInSeconds ({policy.max_execution_s})"
            if time.monotonic() >= bake_ends or self.context.closing.wait(ALARM_POLL_S):
                return None

    def _alarm_in_alarm(self, region: str, alarm_names: tuple[str, ...]) -> str | None:
        if not alarm_names:
            return None
        cloudwatch = self.context.client("cloudwatch", region)
        alarms = cloudwatch.describe_alarms(AlarmNames=list(alarm_names))["MetricAlarms"]
        return next((alarm["AlarmName"] for alarm in alarms if alarm["StateValue"] == "ALARM"), None)

    # --- DeleteEndpoint -------------------------------------------------------------------------

    def delete_endpoint(
        self, environ: dict[str, Any], start_response: Callable[..., Any], account: str, region: str
    ) -> Any:
        name = read_json(environ).get("EndpointName", "")
        status, headers, body = self.context.call_moto(environ)
        if status == 200:
            with self.context.lock:
                server = self.servers.pop((account, region, name), None)
            if server is not None:
                server.stop()
        return forward(start_response, status, headers, body)

    def _put_event(self, account: str, region: str, name: str) -> None:
        endpoint = self.context.backend(account, region).endpoints.get(name)
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
        self.context.put_event(account, region, ENDPOINT_EVENT, detail, [endpoint.arn])
