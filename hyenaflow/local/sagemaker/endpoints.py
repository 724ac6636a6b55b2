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
- DeleteEndpoint stops the endpoint's server.
Each settled state puts a "SageMaker Endpoint State Change" event on the default bus.
"""

from __future__ import annotations

from collections.abc import Callable
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
from hyenaflow.local.wsgi import forward, json_error, json_response, read_json

ENDPOINT_EVENT = "SageMaker Endpoint State Change"
FAILURE_REASON_MAX = 1024  # DescribeEndpoint FailureReason length limit (botocore: FailureReason)


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


class Endpoints:
    """The endpoint operations of one server and the inference servers behind its endpoints."""

    def __init__(self, context: SageMakerContext) -> None:
        self.context = context
        self.servers: dict[Key, InferenceServer] = {}

    def operations(self) -> dict[str, Operation]:
        return {
            "CreateModel": self._refuse_existing("ModelName", "_models", "model"),
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
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
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
            try:
                new = self._deploy(account, region, name, config_name)
            except Exception as error:  # the old deployment keeps serving: SageMaker rolls back
                endpoint.endpoint_status, endpoint.pending_deployment_summary = "InService", None
                reason = f"Update to {config_name} failed and was rolled back: {failure_reason(error)}"
                endpoint.failure_reason = reason[:FAILURE_REASON_MAX]
                endpoint.last_modified_time = datetime.now(UTC)
                self._put_event(account, region, name)
                return
            with self.context.lock:
                old = self.servers.get((account, region, name))
                self.servers[(account, region, name)] = new
            endpoint.endpoint_config_name = config_name
            endpoint.production_variants = endpoint._process_production_variants(
                backend.endpoint_configs[config_name].production_variants
            )
            endpoint.failure_reason, endpoint.pending_deployment_summary = None, None
            endpoint.endpoint_status, endpoint.last_modified_time = "InService", datetime.now(UTC)
            self._put_event(account, region, name)
            if old is not None:
                old.stop()

        self.context.background(blue_green, f"update-{name}")
        return json_response(start_response, {"EndpointArn": endpoint.arn})

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
