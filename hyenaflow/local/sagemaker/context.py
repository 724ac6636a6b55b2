"""What every emulated SageMaker operation needs: moto's records, moto's app behind this layer,
boto3 clients for the local endpoint, the event bus, and background threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hyenaflow.local.account import client_environment
from hyenaflow.local.sagemaker.processes import ChildProcesses
from hyenaflow.local.service_events import EventBus
from hyenaflow.local.wsgi import WsgiApp, call_app

Key = tuple[str, str, str]  # (account, region, resource name)
# An emulated operation: (environ, start_response, account, region) -> WSGI response body.
Operation = Callable[[dict[str, Any], Callable[..., Any], str, str], Any]


@dataclass(frozen=True)
class OperationCall:
    """One request to an emulated operation: the WSGI pair, whose account and which Region, and
    its JSON body (read once)."""

    environ: dict[str, Any]
    start_response: Callable[..., Any]
    account: str
    region: str
    request: dict[str, Any]


def epoch_ms(value: Any) -> Any:
    """Event payloads carry timestamps as epoch milliseconds, as SageMaker's events do."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: epoch_ms(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [epoch_ms(v) for v in value]
    return value


class SageMakerContext:
    """Shared by the training, endpoint and runtime emulations of one server."""

    def __init__(self, downstream: WsgiApp, workdir: Path, events: EventBus) -> None:
        self.downstream = downstream
        self.workdir = Path(workdir)
        self.events = events
        self.endpoint_url = ""  # set once the server is bound
        # One lock for check-then-create steps across operations, client creation and registries.
        self.lock = threading.RLock()
        self.closing = threading.Event()
        # Training scripts and inference servers, so that closing ends them all at once.
        self.processes = ChildProcesses()
        self._threads: list[threading.Thread] = []
        self._session = boto3.session.Session()
        self._clients: dict[tuple[str, str], Any] = {}

    @staticmethod
    def backend(account: str, region: str) -> Any:
        """moto's SageMaker backend: it keeps the records, so Describe*/List* stay moto's."""
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[account][region]

    def call_moto(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        return call_app(self.downstream, environ)

    def client(self, service: str, region: str) -> Any:
        """One client per (service, region), made under the lock: creating clients is not
        thread-safe in boto3, using one is; and loading the SageMaker model takes a second."""
        with self.lock:
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

    def aws_env(self, region: str) -> dict[str, str]:
        """Environment of training scripts and inference servers: AWS calls go to this endpoint."""
        return client_environment(self.endpoint_url, region)

    def put_event(
        self, account: str, region: str, detail_type: str, detail: dict[str, Any], resources: list[str]
    ) -> None:
        self.events.put(account, region, "aws.sagemaker", detail_type, epoch_ms(detail), resources)

    def background(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self.lock:
            self._threads.append(thread)
        thread.start()

    def join_background(self, deadline: float) -> None:
        """Wait for the background threads until `deadline` (time.monotonic()), no longer."""
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
