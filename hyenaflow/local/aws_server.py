"""One local AWS endpoint: moto's server, plus our HealthOmics and SageMaker emulations.

Why this module reaches into moto: moto has no plugin API for extra services. Its server
(`DomainDispatcherApplication`) picks a backend by matching a host name inferred from the SigV4
credential scope (`.../us-east-1/omics/aws4_request` -> `omics.us-east-1.amazonaws.com`) against
`backend_url_patterns`, then builds a Flask app from that backend's `flask_paths`. We subclass the
dispatcher so that, for this server instance only, the pattern list also holds `omics` and the app
factory builds the omics Flask app from our own backend (hyenaflow.local.omics, laid out as a moto
service). Those are moto internals, so the moto version is pinned and asserted below: on an
upgrade, re-read `moto/moto_server/werkzeug_app.py` and `threaded_moto_server.py` and bump
`SUPPORTED_MOTO_VERSION`.

Because routing uses the credential scope rather than the Host header, a request whose host
carries botocore's `control-storage-`/`storage-` prefix is served the same as one without it.

The WSGI app the server runs is `SageMakerEmulation(ExtendedDispatcher)`: the SageMaker layer
(hyenaflow.local.sagemaker) answers the operations moto gets wrong and hands everything else on.
"""

from __future__ import annotations

import atexit
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import moto
from botocore.config import Config
from flask import Flask
from moto import backend_index
from moto.core.base_backend import BackendDict
from moto.core.utils import convert_to_flask_response
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.utilities import RegexConverter
from moto.moto_server.werkzeug_app import (
    BackendRequest,
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.routing import Map
from werkzeug.serving import make_server

from hyenaflow.local.account import ACCOUNT_ID, DEFAULT_REGION, TEST_CREDENTIAL, client_environment
from hyenaflow.local.omics import models as omics_models
from hyenaflow.local.omics import urls as omics_urls
from hyenaflow.local.sagemaker import SageMakerEmulation
from hyenaflow.local.service_events import EventBus
from hyenaflow.local.throttling import throttling
from hyenaflow.local.wsgi import WsgiApp

SUPPORTED_MOTO_VERSION = "5.2.5"
if moto.__version__ != SUPPORTED_MOTO_VERSION:  # pragma: no cover - guards an upgrade
    raise ImportError(
        f"hyenaflow.local extends moto {SUPPORTED_MOTO_VERSION}'s server internals but moto "
        f"{moto.__version__} is installed; install moto[server]=={SUPPORTED_MOTO_VERSION} "
        "or re-check hyenaflow/local/aws_server.py against the new version"
    )


# --- extra services on moto's server --------------------------------------------------------


@dataclass(frozen=True)
class ExtraService:
    """A service moto lacks, served by the same moto server: its host pattern and backends."""

    name: str
    url_pattern: re.Pattern[str]
    backends: BackendDict


OMICS = ExtraService("omics", re.compile(omics_urls.url_bases[0]), omics_models.omics_backends)


def flask_app_for(service: ExtraService) -> Flask:
    """The Flask app for one of our backends, built the way moto's `create_backend_app` does."""
    app = Flask(f"hyenaflow-{service.name}")
    app.service = service.name  # type: ignore[attr-defined]
    app.request_class = BackendRequest
    app.view_functions = {}
    app.url_map = Map()
    app.url_map.converters["regex"] = RegexConverter
    backend = service.backends[ACCOUNT_ID][DEFAULT_REGION]
    for index, (url_path, handler) in enumerate(backend.flask_paths.items()):
        app.add_url_rule(
            url_path,
            endpoint=f"{service.name}.dispatch.{index}",
            methods=["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"],
            view_func=convert_to_flask_response(handler),
            strict_slashes=False,
        )
    return app


class ExtendedDispatcher(DomainDispatcherApplication):
    """moto's host dispatcher with our extra services added for this instance only."""

    def __init__(self, extra_services: Iterable[ExtraService]) -> None:
        super().__init__(create_backend_app)
        self.extra_services = {service.name: service for service in extra_services}
        # An instance attribute: moto's module-level list stays untouched.
        self.backend_url_patterns = [
            (service.name, service.url_pattern) for service in self.extra_services.values()
        ] + list(backend_index.backend_url_patterns)
        self.create_app = self._create_app

    def _create_app(self, service: str) -> Flask:
        if service in self.extra_services:
            return flask_app_for(self.extra_services[service])
        return create_backend_app(service)  # type: ignore[arg-type]


class _QuietRequestHandler(MotoRequestHandler):
    """No per-request access log lines on stderr (they drown test and demo output)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class WsgiMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer serving a WSGI app we assemble (dispatcher + SageMaker emulation)."""

    def __init__(self, app: WsgiApp, host: str, port: int) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self._app = app

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, self._app, True, request_handler=_QuietRequestHandler
        )
        self._server_ready_event.set()
        # shutdown() waits for the loop to see its flag: a short poll keeps a stop quick. The loop
        # closes the listening socket when it ends (werkzeug's serve_forever).
        self._server.serve_forever(poll_interval=0.1)


# --- the public handle -------------------------------------------------------------------------


@dataclass
class AwsServer:
    """A running local AWS endpoint. Use as a context manager or call `stop()`."""

    endpoint_url: str
    region: str
    account_id: str
    workdir: Path
    events: EventBus
    _server: WsgiMotoServer
    _sagemaker: SageMakerEmulation
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _stopped: bool = False

    def env(self) -> dict[str, str]:
        """Environment variables that point the AWS CLI, boto3 and our Lambdas at this endpoint."""
        return client_environment(self.endpoint_url, self.region)

    def client(self, service: str, **kwargs: Any):  # noqa: ANN201 - boto3 clients have no common type
        """A boto3 client for this endpoint, host-prefix injection off (as functions/pipeline/aws_clients.py does)."""
        config = Config(inject_host_prefix=False, retries={"mode": "standard", "max_attempts": 3})
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=TEST_CREDENTIAL,
            aws_secret_access_key=TEST_CREDENTIAL,
            config=config,
            **kwargs,
        )

    def inject_throttling(self, service: str, operation: str, times: int = 1) -> None:
        """Answer the next `times` calls of `operation` with the service's ThrottlingException
        (a test hook: see hyenaflow/local/throttling.py)."""
        throttling.inject(service, operation, times)

    def interrupt_spot_training(self, job_name: str) -> None:
        """Reclaim a running managed spot training job's instance, as EC2 does: the script is
        killed and SageMaker restarts the job from its synced checkpoints (a test/demo hook:
        hyenaflow/local/sagemaker/training_run.py)."""
        self._sagemaker.training.interrupt_spot_job(self.account_id, self.region, job_name)

    def hold_endpoint_updates(self) -> None:
        """Keep every UpdateEndpoint started from now on at Updating, the old config serving,
        until release_endpoint_updates(): a blue/green update in flight, as one is on AWS for
        the minutes its new fleet takes (a test hook: sagemaker/endpoints.py)."""
        self._sagemaker.endpoints.hold_updates()

    def release_endpoint_updates(self) -> None:
        """Let held endpoint updates deploy, bake and switch (or roll back) as usual."""
        self._sagemaker.endpoints.release_updates()

    def stop(self) -> None:
        """Stop accepting requests, then end training jobs and endpoint servers (within about
        STOP_GRACE_S: `hyenaflow local up` must be gone within 3 s of Ctrl-C). Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        # First: a client then finds the stack gone rather than half stopped, and a thread still
        # calling it (a Lambda handler, a deployment fetching its model) fails at once.
        self._server.stop()
        for close in reversed(self._closers):
            close()
        self._closers.clear()

    def __enter__(self) -> AwsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_aws_server(
    workdir: Path,
    port: int = 0,
    host: str = "127.0.0.1",
    region: str = DEFAULT_REGION,
    read_set_file_names: str = "upload",
) -> AwsServer:
    """Start moto + the HealthOmics emulation + the SageMaker emulation on http://host:port.

    `workdir` receives training job and endpoint work directories and logs. moto's state is
    process-global, so it is reset here: every AwsServer starts with an empty account, and one
    AwsServer at a time per process is supported. `read_set_file_names`: how HealthOmics names
    read-set files at the access point, "upload" or "source" (see omics/models.py).
    """
    from moto.moto_api._internal.models import moto_api_backend

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    moto_api_backend.reset()
    omics_models.reset()
    throttling.clear()
    events = EventBus()
    sagemaker = SageMakerEmulation(
        downstream=ExtendedDispatcher([OMICS]),
        workdir=workdir / "sagemaker",
        events=events,
    )
    omics_models.configure(events=events, read_set_file_names=read_set_file_names)
    server = WsgiMotoServer(sagemaker, host, port)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    aws = AwsServer(
        endpoint_url=f"http://{bound_host}:{bound_port}",
        region=region,
        account_id=ACCOUNT_ID,
        workdir=workdir,
        events=events,
        _server=server,
        _sagemaker=sagemaker,
    )
    sagemaker.endpoint_url = aws.endpoint_url
    aws._closers.append(sagemaker.close)
    # Import threads are short; one still running is waited for by the next server's reset.
    aws._closers.append(lambda: omics_models.shutdown(timeout_s=0.5))
    # Training and inference subprocesses run in their own sessions (so a stop ends their
    # children too); make sure they do not outlive an interpreter that forgot to call stop().
    atexit.register(aws.stop)
    return aws
