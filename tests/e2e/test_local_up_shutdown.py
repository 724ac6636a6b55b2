"""Ctrl-C and SIGTERM stop `hyenaflow local up` at once, with a training job and an endpoint alive.

The stack must be gone within 3 s (the issue's requirement, so this one deadline is the
assertion), with every process it started ended (the training script and its workers, the
inference server) and every port it listened on free again.
"""

from __future__ import annotations

import io
import os
import signal
import tarfile
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from hyenaflow.local.pipeline import REPO_ROOT
from tests.support.local_up import LocalUp
from tests.support.polling import wait_for
from tests.support.processes import descendants, listening_ports, port_is_free, process_gone

pytestmark = pytest.mark.slow

LAMBDA_PHAGE = REPO_ROOT / "data" / "lambda_phage_NC_001416.fa"
TINY_MODEL = REPO_ROOT / "tests" / "fixtures" / "hyenadna" / "tiny_reference"
STOP_DEADLINE_S = 3.0
FLOW_DEADLINE_S = 300.0
# A training job that is still training when the signal comes, whatever the machine's speed.
ENDLESS_TRAINING = {"HYENAFLOW_LOCAL_MAX_STEPS": "1000000"}


def _clients(stack: LocalUp) -> tuple[object, object]:
    exports = stack.exports
    session = boto3.session.Session(
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=exports.get("AWS_SESSION_TOKEN"),
        region_name=exports["AWS_DEFAULT_REGION"],
    )
    config = Config(inject_host_prefix=False)
    url = exports["AWS_ENDPOINT_URL"]
    return (
        session.client("s3", endpoint_url=url, config=config),
        session.client("sagemaker", endpoint_url=url, config=config),
    )


def _serve_tiny_model(s3, sagemaker, bucket: str, name: str) -> None:
    """An endpoint on the tiny reference model: an inference server without a training run first."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in TINY_MODEL.iterdir():
            tar.add(path, arcname=path.name)
    s3.put_object(Bucket=bucket, Key=f"models/{name}/model.tar.gz", Body=archive.getvalue())
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/local",
        PrimaryContainer={"Image": "local", "ModelDataUrl": f"s3://{bucket}/models/{name}/model.tar.gz"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)


def _command_lines(pids: set[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                lines.append(cmdline.read().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_local_up_stops_within_3s_ending_its_training_job_endpoint_and_ports(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    stack = LocalUp.start(tmp_path / "local", ENDLESS_TRAINING)
    children: set[int] = set()
    try:
        # Given a training job training (from a genome in incoming/) and an endpoint InService
        s3, sagemaker = _clients(stack)
        bucket = stack.example_commands("aws s3 cp")[0][-1].removeprefix("s3://").split("/")[0]
        s3.upload_file(str(LAMBDA_PHAGE), bucket, f"incoming/{LAMBDA_PHAGE.name}")
        _serve_tiny_model(s3, sagemaker, bucket, "shutdown-probe")
        job_name = wait_for(
            lambda: [j["TrainingJobName"] for j in sagemaker.list_training_jobs()["TrainingJobSummaries"]],
            "start_training to create a training job",
            FLOW_DEADLINE_S,
        )[0]
        job = wait_for(
            lambda: sagemaker.describe_training_job(TrainingJobName=job_name),
            f"training job {job_name} to be training",
            FLOW_DEADLINE_S,
            until=lambda d: d["SecondaryStatus"] == "Training" or d["TrainingJobStatus"] != "InProgress",
        )
        assert job["TrainingJobStatus"] == "InProgress", job.get("FailureReason")
        endpoint = wait_for(
            lambda: sagemaker.describe_endpoint(EndpointName="shutdown-probe"),
            "the endpoint to come up",
            FLOW_DEADLINE_S,
            until=lambda d: d["EndpointStatus"] in ("InService", "Failed"),
        )
        assert endpoint["EndpointStatus"] == "InService", endpoint.get("FailureReason")
        children = descendants(stack.pid)
        ports = listening_ports({stack.pid} | children)
        commands = _command_lines(children)
        assert any("train.py" in c for c in commands) and any("serve.py" in c for c in commands), commands
        stack_port = int(stack.exports["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
        assert stack_port in ports and len(ports) >= 2, ports  # the stack's and the inference server's

        # When the user presses Ctrl-C (the terminal signals the foreground process group) or
        # the process is sent SIGTERM
        signalled = time.monotonic()
        if stop_signal == signal.SIGINT:
            os.killpg(stack.pid, signal.SIGINT)
        else:
            os.kill(stack.pid, signal.SIGTERM)

        # Then it exits within 3 s, cleanly
        wait_for(
            lambda: stack.process.poll() is not None,
            f"local up to exit after {stop_signal.name}",
            STOP_DEADLINE_S,
            interval_s=0.05,
        )
        print(f"local up exited {time.monotonic() - signalled:.2f} s after {stop_signal.name}")
        assert stack.process.returncode == 0, stack.output
        # with every process it started ended and every port it listened on free
        left = sorted(pid for pid in children if not process_gone(pid))
        assert left == [], f"still running after local up exited: {_command_lines(set(left))}"
        assert sorted(port for port in ports if not port_is_free(port)) == []
    finally:  # whatever failed, leave nothing running for the next test
        children |= descendants(stack.pid) if stack.process.poll() is None else set()
        stack.stop(signal.SIGKILL)
        for pid in children:
            if not process_gone(pid):
                os.kill(pid, signal.SIGKILL)
