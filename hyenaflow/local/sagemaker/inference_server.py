"""One deployment of an endpoint: the inference server running as a subprocess on an unpacked model.

It runs `python <serve.py> --model-dir DIR --port N` - the model's own `code/serve.py` when it
ships one, else the configured default (the repository's `endpoint/serve.py`) - and is live once
`GET /ping` answers 200, as SageMaker's health check wants.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyenaflow.local.polling import wait_for
from hyenaflow.local.sagemaker.processes import ChildProcesses, StackStopping, terminate_process_group

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SERVE_SCRIPT = REPO_ROOT / "endpoint" / "serve.py"
STARTUP_TIMEOUT_S = float(os.environ.get("HYENAFLOW_ENDPOINT_STARTUP_TIMEOUT_S", "300"))
INVOCATION_TIMEOUT_S = 60.0  # SageMaker real-time endpoints answer within 60 s or time out


class InferenceServerFailed(Exception):
    """The server did not come up; the message is the endpoint's FailureReason."""


@dataclass
class InferenceServer:
    """One running inference server behind an endpoint."""

    endpoint_config_name: str
    variant_name: str
    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def stop(self) -> None:
        terminate_process_group(self.process, 10.0)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[int, bytes, str]:
        """(status, body, content type) from POST /invocations; HTTP errors are returned, not raised."""
        request = urllib.request.Request(
            f"{self.url}/invocations",
            data=body,
            method="POST",
            headers={"Content-Type": content_type, "Accept": accept},
        )
        try:
            with urllib.request.urlopen(request, timeout=INVOCATION_TIMEOUT_S) as response:
                return response.status, response.read(), response.headers.get("Content-Type", accept)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers.get("Content-Type", "text/plain")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_inference_server(
    *,
    model_dir: Path,
    container: dict[str, Any],
    endpoint_name: str,
    endpoint_config_name: str,
    variant_name: str,
    directory: Path,
    default_serve_script: Path,
    aws_env: dict[str, str],
    processes: ChildProcesses,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
    cancelled: threading.Event | None = None,
) -> InferenceServer:
    """Start the server for the unpacked model in `model_dir` and wait for /ping."""
    own_server = model_dir / "code" / "serve.py"
    serve_script = own_server if own_server.is_file() else default_serve_script
    port = _free_port()
    env = dict(os.environ)
    env.update(aws_env)
    env.update(
        {
            "SM_MODEL_DIR": str(model_dir),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_ENDPOINT_NAME": endpoint_name,
            "PYTHONUNBUFFERED": "1",
        }
    )
    # The container's /opt/ml/model is the unpacked model dir here (e.g. SAGEMAKER_SUBMIT_DIRECTORY).
    env.update(
        {
            key: value.replace("/opt/ml/model", str(model_dir))
            for key, value in (container.get("Environment") or {}).items()
        }
    )
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "server.log"
    with log_path.open("ab") as log:
        try:
            process = processes.start(
                [sys.executable, str(serve_script), "--model-dir", str(model_dir), "--port", str(port)],
                cwd=serve_script.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        except StackStopping as error:
            raise InferenceServerFailed(
                "The local stack shut down while the endpoint was starting"
            ) from error
    server = InferenceServer(endpoint_config_name, variant_name, port, process, directory)

    def readiness() -> str | None:
        if cancelled is not None and cancelled.is_set():
            return "cancelled"
        if _ping(server.url):
            return "live"
        return "exited" if process.poll() is not None else None

    try:
        outcome = wait_for(readiness, f"{serve_script} to answer /ping", startup_timeout_s)
    except TimeoutError:
        outcome = "timed out"
    if outcome == "live":
        return server
    server.stop()
    if outcome == "cancelled":
        raise InferenceServerFailed("The local stack shut down while the endpoint was starting")
    tail = log_path.read_text("utf-8", "replace")[-600:]
    why = f"exited with code {process.returncode}" if outcome == "exited" else "did not answer /ping"
    raise InferenceServerFailed(
        f"The primary container for production variant {variant_name} did not pass the ping "
        f"health check: inference server {serve_script} {why} (log {log_path}): {tail}"
    )
