"""The `hyenaflow` command line against the local stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from hyenaflow.cli import local_up_instructions, main, write_stack_state
from hyenaflow.local.pipeline import REPO_ROOT, LocalPipeline, PipelineConfig
from tests.support import polling

TINY_MODEL = REPO_ROOT / "tests" / "fixtures" / "hyenadna" / "tiny_reference"


def wait_for(condition, what: str, timeout_s: float = 120.0):
    return polling.wait_for(condition, what, timeout_s)


def test_package_training_code_writes_a_bundle_with_the_entry_point(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bundle" / "sourcedir.tar.gz"

    assert main(["package-training-code", "--out", str(out)]) == 0

    with tarfile.open(out) as bundle:
        names = bundle.getnames()
    assert "train.py" in names and "endpoint/inference.py" in names
    assert str(out) in capsys.readouterr().out


def test_fire_schedule_reaches_the_running_stack(tmp_path: Path, capsys) -> None:
    config = PipelineConfig(workdir=tmp_path / "local", deliver=False, upload_training_code=False)
    with LocalPipeline(config) as pipeline:
        write_stack_state(pipeline)

        assert main(["fire-schedule", "ReconcileFunction", "--workdir", str(pipeline.workdir)]) == 0

        sqs = pipeline.client("sqs")
        (message,) = sqs.receive_message(QueueUrl=pipeline.router.queue_urls["ReconcileFunction"])["Messages"]
        event = json.loads(message["Body"])
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
        assert main(["fire-schedule", "IngestFastaFunction", "--workdir", str(pipeline.workdir)]) == 2
        assert "no schedule" in capsys.readouterr().err


def test_fire_schedule_without_a_running_stack_says_how_to_start_one(tmp_path: Path, capsys) -> None:
    assert main(["fire-schedule", "ReconcileFunction", "--workdir", str(tmp_path)]) == 2
    assert "hyenaflow local up" in capsys.readouterr().err


@pytest.mark.slow
def test_invoke_scores_dna_on_a_local_endpoint(tmp_path: Path, capsys, monkeypatch) -> None:
    config = PipelineConfig(workdir=tmp_path / "local", deliver=False, upload_training_code=False)
    with LocalPipeline(config) as pipeline:
        # Given an endpoint serving the tiny reference model
        archive = tmp_path / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in TINY_MODEL.iterdir():
                tar.add(path, arcname=path.name)
        pipeline.client("s3").upload_file(str(archive), pipeline.data_bucket, "models/cli/model.tar.gz")
        sagemaker = pipeline.client("sagemaker")
        sagemaker.create_model(
            ModelName="hyenaflow-cli",
            ExecutionRoleArn=pipeline.resources["SageMakerExecutionRole"].attributes["Arn"],
            PrimaryContainer={
                "Image": "local",
                "ModelDataUrl": f"s3://{pipeline.data_bucket}/models/cli/model.tar.gz",
            },
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="hyenaflow-cli",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "hyenaflow-cli",
                    "InstanceType": "ml.m5.xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName="hyenaflow-cli", EndpointConfigName="hyenaflow-cli")
        status = wait_for(
            lambda: (
                sagemaker.describe_endpoint(EndpointName="hyenaflow-cli")["EndpointStatus"]
                in ("InService", "Failed")
                and sagemaker.describe_endpoint(EndpointName="hyenaflow-cli")["EndpointStatus"]
            ),
            "the endpoint",
        )
        assert status == "InService"
        for name, value in pipeline.env().items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()

        # When the CLI asks it to score a sequence
        code = main(
            ["invoke", "--endpoint-name", "hyenaflow-cli", "--task", "score", "--sequence", "ACGTACGTTTGA"]
            + ["--endpoint-url", pipeline.endpoint_url]
        )

        # Then it prints the endpoint's JSON answer
        assert code == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["results"][0]["length"] == 12
        # and a request the endpoint rejects comes back as a message, exit code 1
        assert (
            main(["invoke", "--endpoint-name", "hyenaflow-cli", "--task", "score", "--sequence", "HELLO"])
            == 1
        )
        assert "hyenaflow-cli: endpoint answered 400" in capsys.readouterr().err


@pytest.mark.slow
def test_local_up_serves_until_terminated_and_fires_schedules(tmp_path: Path) -> None:
    workdir = tmp_path / "local"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "hyenaflow.cli", "local", "up", "--port", "0", "--workdir", str(workdir)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        state = wait_for(lambda: (workdir / "stack.json").exists(), "stack.json", timeout_s=60)
        state = json.loads((workdir / "stack.json").read_text())
        fired = subprocess.run(
            [
                sys.executable,
                "-m",
                "hyenaflow.cli",
                "fire-schedule",
                "ReconcileFunction",
                "--workdir",
                str(workdir),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert fired.returncode == 0, fired.stderr
        reconcile_log = workdir / "logs" / "lambda" / "ReconcileFunction.log"
        wait_for(
            lambda: reconcile_log.exists() and "REPORT RequestId" in reconcile_log.read_text(), "reconcile"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert f"export AWS_ENDPOINT_URL={state['endpoint_url']}" in output
    assert "[lambda] ReconcileFunction ok" in output
    assert not (workdir / "stack.json").exists()


def test_readme_shows_the_exports_and_aws_commands_local_up_prints(tmp_path: Path) -> None:
    config = PipelineConfig(workdir=tmp_path / "local", deliver=False, upload_training_code=False)
    with LocalPipeline(config) as pipeline:
        printed = local_up_instructions(pipeline)
        store_id = pipeline.sequence_store_id
    readme = (REPO_ROOT / "README.md").read_text()

    exports = [line.partition("=")[0] for line in printed if line.startswith("export ")]
    assert "export AWS_DISABLE_HOST_PREFIX_INJECTION" in exports
    assert [name for name in exports if f"\n{name}=" not in readme] == []
    commands = [line.replace(store_id, "<printed id>") for line in printed if line.startswith("aws ")]
    assert len(commands) == 5 and [command for command in commands if command not in readme] == []


def test_upload_training_code_finds_the_data_bucket_in_the_stack_outputs(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    config = PipelineConfig(workdir=tmp_path / "local", deliver=False, upload_training_code=False)
    with LocalPipeline(config) as pipeline:
        for name, value in pipeline.env().items():
            monkeypatch.setenv(name, value)
        # Given a deployed stack whose outputs name the data bucket (as template.yaml's do)
        outputs_only = {
            "Resources": {
                "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "deployed-data"}}
            },
            "Outputs": {"DataBucketName": {"Value": {"Ref": "Bucket"}}},
        }
        pipeline.client("cloudformation").create_stack(
            StackName="my-hyenaflow", TemplateBody=json.dumps(outputs_only)
        )

        # When the training code is uploaded by stack name
        code = main(["upload-training-code", "--stack-name", "my-hyenaflow"])

        # Then the bundle lands where start_training's TRAINING_SOURCE_URI points
        assert code == 0
        head = pipeline.client("s3").head_object(Bucket="deployed-data", Key="code/training/sourcedir.tar.gz")
        assert head["ContentLength"] > 1000
        assert "s3://deployed-data/code/training/sourcedir.tar.gz" in capsys.readouterr().out
