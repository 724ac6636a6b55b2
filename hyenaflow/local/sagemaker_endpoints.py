"""Local SageMaker endpoints: each deployment is the inference server running as a subprocess.

A deployment downloads the model's ModelDataUrl (model.tar.gz) from (moto) S3, unpacks it and
runs `python <serve.py> --model-dir DIR --port N` - the model's own `code/serve.py` when it ships
one, else the configured default (the repository's `endpoint/serve.py`). It is live once
`GET /ping` answers 200. UpdateEndpoint is blue/green: the new deployment must come up before
traffic moves to it and the old one is stopped; if it does not, the old one keeps serving.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyenaflow.local.sagemaker_training import _split_s3, _terminate

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SERVE_SCRIPT = REPO_ROOT / "endpoint" / "serve.py"
STARTUP_TIMEOUT_S = float(os.environ.get("HYENAFLOW_ENDPOINT_STARTUP_TIMEOUT_S", "300"))
INVOCATION_TIMEOUT_S = 60.0  # SageMaker real-time endpoints answer within 60 s or time out


class DeploymentFailed(Exception):
    """The endpoint (or update) fails with this message as FailureReason."""


@dataclass
class Deployment:
    """One running inference server behind an endpoint."""

    endpoint_config_name: str
    variant_name: str
    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        _terminate(self.process, 10.0)

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


def start_deployment(
    *,
    sagemaker: Any,
    s3: Any,
    endpoint_name: str,
    endpoint_config_name: str,
    directory: Path,
    default_serve_script: Path,
    aws_env: dict[str, str],
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
    cancelled: threading.Event | None = None,
) -> Deployment:
    """Download the config's model, start its inference server, wait for /ping."""
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint_config_name)
    variant = config["ProductionVariants"][0]
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    model_data_url = container.get("ModelDataUrl")
    if not model_data_url:
        raise DeploymentFailed(f"Model {variant['ModelName']} has no ModelDataUrl; nothing to serve locally")
    directory.mkdir(parents=True, exist_ok=True)
    model_dir = directory / "model"
    model_dir.mkdir(exist_ok=True)
    archive = directory / "model.tar.gz"
    bucket, key = _split_s3(model_data_url)
    try:
        s3.download_file(bucket, key, str(archive))
    except Exception as error:
        raise DeploymentFailed(f"Could not download model data {model_data_url}: {error}") from error
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(model_dir, filter="data")
    except tarfile.TarError as error:
        raise DeploymentFailed(f"Model data {model_data_url} is not a valid tar.gz: {error}") from error

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
    log_path = directory / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(serve_script), "--model-dir", str(model_dir), "--port", str(port)],
            cwd=serve_script.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deployment = Deployment(endpoint_config_name, variant["VariantName"], port, process, directory)
    deadline = time.monotonic() + startup_timeout_s
    while not _ping(deployment.url):
        if cancelled is not None and cancelled.is_set():
            deployment.stop()
            raise DeploymentFailed("The local stack shut down while the endpoint was starting")
        if process.poll() is not None or time.monotonic() > deadline:
            deployment.stop()
            tail = log_path.read_text("utf-8", "replace")[-600:]
            why = (
                f"exited with code {process.returncode}"
                if process.poll() is not None
                else "did not answer /ping"
            )
            raise DeploymentFailed(
                f"The primary container for production variant {variant['VariantName']} did not pass the ping "
                f"health check: inference server {serve_script} {why} (log {log_path}): {tail}"
            )
        time.sleep(0.2)  # poll interval while the server loads the model
    return deployment
