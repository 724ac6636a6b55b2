"""The SageMaker emulation as WSGI middleware in front of moto's server.

It intercepts the operations moto gets wrong (by X-Amz-Target, and the runtime's
`/endpoints/<name>/invocations` path) and hands each to the module of its resource:
training jobs (training.py), model packages (model_packages.py), models, endpoint configs and
endpoints (endpoints.py), and InvokeEndpoint (runtime.py). Every other SageMaker call, and every other service, goes to moto
unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyenaflow.local.account import account_for
from hyenaflow.local.sagemaker.context import SageMakerContext
from hyenaflow.local.sagemaker.endpoints import Endpoints
from hyenaflow.local.sagemaker.instance_types import use_botocore_instance_types
from hyenaflow.local.sagemaker.model_packages import ModelPackages
from hyenaflow.local.sagemaker.processes import STOP_GRACE_S
from hyenaflow.local.sagemaker.runtime import INVOCATIONS_PATH, invoke_endpoint
from hyenaflow.local.sagemaker.training import TrainingJobs
from hyenaflow.local.service_events import EventBus
from hyenaflow.local.throttling import THROTTLING_MESSAGE, throttling
from hyenaflow.local.wsgi import WsgiApp, json_error, request_scope

THREAD_JOIN_S = 0.5  # how long close() waits for the threads of ended jobs and deployments


class SageMakerEmulation:
    """WSGI app: answers the intercepted SageMaker operations, passes the rest downstream."""

    def __init__(
        self,
        downstream: WsgiApp,
        workdir: Path,
        events: EventBus,
    ) -> None:
        use_botocore_instance_types()
        self.context = SageMakerContext(downstream, workdir, events)
        self.training = TrainingJobs(self.context)
        self.model_packages = ModelPackages(self.context)
        self.endpoints = Endpoints(self.context, self.model_packages)
        self._operations = {
            **self.training.operations(),
            **self.model_packages.operations(),
            **self.endpoints.operations(),
        }

    @property
    def endpoint_url(self) -> str:
        return self.context.endpoint_url

    @endpoint_url.setter
    def endpoint_url(self, url: str) -> None:
        """Where training scripts and inference servers send their AWS calls (this server)."""
        self.context.endpoint_url = url

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        access_key, region, service = request_scope(environ)
        if service == "sagemaker":
            account = account_for(access_key)
            invocation = INVOCATIONS_PATH.match(environ.get("PATH_INFO", ""))
            if invocation:
                return invoke_endpoint(
                    self.endpoints, environ, start_response, account, region, invocation.group(1)
                )
            operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
            if throttling.take("sagemaker", operation):  # a test asked for it
                return json_error(start_response, "ThrottlingException", THROTTLING_MESSAGE)
            if operation in self._operations:
                return self._operations[operation](environ, start_response, account, region)
        return self.context.downstream(environ, start_response)

    def close(self) -> None:
        """End every training job and inference server this emulation started, all at once:
        SIGTERM, STOP_GRACE_S, then SIGKILL; then give their threads a moment to record it."""
        with self.context.lock:  # from here on, CreateTrainingJob is refused
            self.context.closing.set()
        self.training.mark_all_stopped()
        self.context.processes.stop_all(STOP_GRACE_S)
        # Threads whose process is gone finish in milliseconds; one stuck elsewhere (an S3 copy
        # of a large model) is a daemon and must not hold up the stop.
        deadline = time.monotonic() + THREAD_JOIN_S
        self.training.join_all(deadline)
        self.context.join_background(deadline)
