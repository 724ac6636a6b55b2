"""One local AWS endpoint: moto's server plus our HealthOmics and SageMaker gap-fill.

Why this module reaches into moto: moto has no plugin API for extra services. Its server
(`DomainDispatcherApplication`) picks a backend by matching a host name inferred from the SigV4
credential scope (`.../us-east-1/omics/aws4_request` -> `omics.us-east-1.amazonaws.com`) against
`backend_url_patterns`, then builds a Flask app from that backend's `flask_paths`. We subclass the
dispatcher so that, for this server instance only, the pattern list also holds `omics` and the app
factory builds the omics Flask app from our own `BaseBackend`. Those are moto internals, so the
moto version is pinned and asserted below: on an upgrade, re-read
`moto/moto_server/werkzeug_app.py` and `threaded_moto_server.py` and bump `SUPPORTED_MOTO_VERSION`.

Because routing uses the credential scope rather than the Host header, a request whose host
carries botocore's `control-storage-`/`storage-` prefix is served the same as one without it.

The WSGI app the server runs is `SageMakerGapFill(ExtendedDispatcher)`: the SageMaker layer
(sagemaker.py) answers the operations moto gets wrong and hands everything else to moto.
"""

from __future__ import annotations

import atexit
import io
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import moto
from botocore.config import Config
from flask import Flask
from moto import backend_index
from moto.core import DEFAULT_ACCOUNT_ID
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

SUPPORTED_MOTO_VERSION = "5.2.5"
if moto.__version__ != SUPPORTED_MOTO_VERSION:  # pragma: no cover - guards an upgrade
    raise ImportError(
        f"hyenaflow.local extends moto {SUPPORTED_MOTO_VERSION}'s server internals but moto "
        f"{moto.__version__} is installed; install moto[server]=={SUPPORTED_MOTO_VERSION} "
        "or re-check hyenaflow/local/moto_server.py against the new version"
    )

DEFAULT_REGION = "us-east-1"
logger = logging.getLogger(__name__)
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
EventListener = Callable[[dict[str, Any]], None]


# --- extra services on moto's server --------------------------------------------------------


@dataclass(frozen=True)
class ExtraService:
    """A service moto lacks, served by the same moto server: its host pattern and backends."""

    name: str
    url_pattern: re.Pattern[str]
    backends: BackendDict


def flask_app_for(service: ExtraService) -> Flask:
    """The Flask app for one of our backends, built the way moto's `create_backend_app` does."""
    app = Flask(f"hyenaflow-{service.name}")
    app.service = service.name  # type: ignore[attr-defined]
    app.request_class = BackendRequest
    app.view_functions = {}
    app.url_map = Map()
    app.url_map.converters["regex"] = RegexConverter
    backend = service.backends[DEFAULT_ACCOUNT_ID][DEFAULT_REGION]
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


class _Server(ThreadedMotoServer):
    """ThreadedMotoServer serving a WSGI app we assemble (dispatcher + gap-fill middleware)."""

    def __init__(self, app: WsgiApp, host: str, port: int) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self._app = app

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, self._app, True, request_handler=_QuietRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


# --- request helpers shared by the emulations ------------------------------------------------

_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def request_scope(environ: dict[str, Any]) -> tuple[str, str, str]:
    """(access key, region, signing service) from a SigV4 Authorization header."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return "", DEFAULT_REGION, ""
    return match.group(1), match.group(2), match.group(3)


def account_for(access_key: str) -> str:
    """The account moto attributes to a request, by the same rules moto's responses use."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key or "AKIAEXAMPLE")


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so the downstream app can read it too."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def call_app(app: WsgiApp, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run a WSGI app and collect (status, headers, body)."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"], captured["headers"] = int(status.split()[0]), headers

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()  # type: ignore[union-attr]
    return captured["status"], captured["headers"], body


def respond(
    start_response: Callable[..., Any], status: int, body: bytes, headers: dict[str, str] | None = None
) -> list[bytes]:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 424: "Failed Dependency", 500: "Error"}
    all_headers = {"Content-Length": str(len(body)), "x-amzn-RequestId": str(uuid.uuid4())}
    all_headers.update(headers or {})
    start_response(f"{status} {reason.get(status, 'Status')}", list(all_headers.items()))
    return [body]


def json_error(start_response: Callable[..., Any], code: str, message: str, status: int = 400) -> list[bytes]:
    """An error in the awsJson/restJson shape botocore parses into ClientError(code, message)."""
    body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    return respond(
        start_response,
        status,
        body,
        {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code},
    )


# --- events ------------------------------------------------------------------------------------


class EventBus:
    """Puts service events (aws.omics, aws.sagemaker) on moto's EventBridge default bus.

    moto's `put_events` matches every rule of the bus and delivers to SQS queue, log group,
    archive and cross-bus targets (Lambda targets raise NotImplementedError in moto 5.2.5), so
    rules created from template.yaml with SQS targets see these events as AWS would send them.
    Listeners additionally get each event as the full envelope (`detail-type`, `detail`, ...).
    """

    def __init__(self) -> None:
        self._listeners: list[EventListener] = []
        self.history: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: EventListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def put(
        self,
        account_id: str,
        region: str,
        source: str,
        detail_type: str,
        detail: dict[str, Any],
        resources: list[str],
    ) -> dict[str, Any]:
        from moto.events.models import events_backends

        time = datetime.now(UTC).replace(microsecond=0)
        entry = {
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, default=_json_default),
            "Resources": resources,
            "Time": time.timestamp(),
        }
        try:
            result = events_backends[account_id][region].put_events([entry])[0]
        except Exception as error:  # EventBridge delivery is best effort; the job's state stands
            logger.warning("could not deliver %s event %s: %r", source, detail_type, error)
            result = {}
        envelope = {
            "version": "0",
            "id": result.get("EventId", str(uuid.uuid4())),
            "detail-type": detail_type,
            "source": source,
            "account": account_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": resources,
            "detail": json.loads(entry["Detail"]),
        }
        with self._lock:
            self.history.append(envelope)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(envelope)
        return envelope


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def wait_for(
    probe: Callable[[], Any],
    until: Callable[[Any], bool],
    timeout_s: float = 60.0,
    what: str = "condition",
    interval_s: float = 0.1,
) -> Any:
    """Call `probe()` until `until(result)` holds; return that result or raise TimeoutError.

    The way to wait on the asynchronous emulations (import jobs, training jobs, endpoints).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s:.0f} s; last value: {result!r}")
        time.sleep(interval_s)


# --- the public handle -------------------------------------------------------------------------


@dataclass
class LocalAws:
    """A running local AWS endpoint. Use as a context manager or call `stop()`."""

    endpoint_url: str
    region: str
    account_id: str
    workdir: Path
    events: EventBus
    _server: _Server
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _stopped: bool = False

    @property
    def port(self) -> int:
        return self._server.get_host_and_port()[1]

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 (and our Lambdas) at this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }

    def client(self, service: str, **kwargs: Any):  # noqa: ANN201 - boto3 clients have no common type
        """A boto3 client for this endpoint, host-prefix injection off (as functions/pipeline does)."""
        config = Config(inject_host_prefix=False, retries={"mode": "standard", "max_attempts": 3})
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
            **kwargs,
        )

    def subscribe(self, listener: EventListener) -> None:
        """Call `listener(event)` for every aws.omics / aws.sagemaker event the emulation emits."""
        self.events.subscribe(listener)

    def stop(self) -> None:
        """Stop training jobs and endpoint servers, then the HTTP server. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        for close in reversed(self._closers):
            close()
        self._closers.clear()
        self._server.stop()

    def __enter__(self) -> LocalAws:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_local_server(
    workdir: Path,
    port: int = 0,
    host: str = "127.0.0.1",
    region: str = DEFAULT_REGION,
    serve_script: Path | None = None,
    training_code_dir: Path | None = None,
    training_log_callback: Callable[[str, str], None] | None = None,
) -> LocalAws:
    """Start moto + the HealthOmics emulation + SageMaker gap-fill on http://host:port.

    `workdir` receives training job and endpoint work directories and logs. moto's state is
    process-global, so it is reset here: every LocalAws starts with an empty account, and one
    LocalAws at a time per process is supported. `training_log_callback(job_name, line)` sees
    every log line of every training job (they also go to the job's training.log).
    """
    from moto.moto_api._internal.models import moto_api_backend

    from hyenaflow.local import omics, sagemaker

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    moto_api_backend.reset()
    omics.reset()
    events = EventBus()
    dispatcher = ExtendedDispatcher([omics.service()])
    gap_fill = sagemaker.SageMakerGapFill(
        downstream=dispatcher,
        workdir=workdir / "sagemaker",
        events=events,
        serve_script=serve_script,
        training_code_dir=training_code_dir,
        log_callback=training_log_callback,
    )
    omics.configure(events=events)
    server = _Server(gap_fill, host, port)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    local = LocalAws(
        endpoint_url=f"http://{bound_host}:{bound_port}",
        region=region,
        account_id=DEFAULT_ACCOUNT_ID,
        workdir=workdir,
        events=events,
        _server=server,
    )
    gap_fill.endpoint_url = local.endpoint_url
    local._closers.append(gap_fill.close)
    local._closers.append(omics.shutdown)
    # Training and inference subprocesses run in their own sessions (so a stop ends their
    # children too); make sure they do not outlive an interpreter that forgot to call stop().
    atexit.register(local.stop)
    return local


def main(argv: list[str] | None = None) -> None:
    """Serve the local AWS endpoint until Ctrl-C / SIGTERM (for the AWS CLI, boto3, notebooks).

    Not a `__main__` (python -m would load this module twice); the `hyenaflow` CLI can expose it.
    """
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description="Serve the local AWS endpoint until Ctrl-C.")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workdir", type=Path, default=Path(".local-aws"))
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so training and endpoint subprocesses are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with start_local_server(args.workdir, port=args.port, host=args.host) as aws:
        print(f"local AWS at {aws.endpoint_url} (region {aws.region}); Ctrl-C stops it", flush=True)
        print("  export " + " ".join(f"{key}={value}" for key, value in aws.env().items()), flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)
