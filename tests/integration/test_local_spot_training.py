"""Managed spot training through SageMaker's contract, on the local SageMaker emulation.

The real training_job/train.py runs as a spot job with a CheckpointConfig. The emulation syncs its
checkpoint dir to S3 while it runs; the test then takes the instance away
(`aws.interrupt_spot_training`: the script is killed mid-run, as a reclaimed spot instance is),
and the emulation restarts the job as SageMaker does: a fresh instance whose checkpoint dir holds
what S3 holds. The restarted job must resume from those checkpoints and end exactly where an
uninterrupted job with the same request ends.

Exact equality, not a tolerance: a batch is a pure function of (seed, step) and a checkpoint holds
the model, optimizer, scheduler and RNG state, so with one thread per job (OMP_NUM_THREADS=1: the
same order of float operations in both jobs) the resumed job repeats the uninterrupted job's
arithmetic bit for bit (tests/integration/test_train_resume.py shows the same for a plain rerun).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from hyenaflow.local import AwsServer, start_aws_server, wait_for
from pipeline.training.metrics import METRIC_DEFINITIONS
from tests.support.lambda_env import REPO

pytestmark = pytest.mark.slow

BUCKET = "spot-training"
MAX_STEPS = 40
HYPERPARAMETERS = {  # tiny and CPU-cheap; a checkpoint every 4 steps
    "max_steps": str(MAX_STEPS),
    "max_length": "128",
    "batch_size": "4",
    "warmup_steps": "4",
    "log_interval": "1",
    "eval_interval": "20",
    "eval_windows": "2",
    "checkpoint_interval": "4",
    "keep_checkpoints": "2",
}


@pytest.fixture
def aws(tmp_path) -> Iterator[AwsServer]:
    with start_aws_server(tmp_path / "aws") as local:
        s3 = local.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(REPO / "data" / "lambda_phage_NC_001416.fa"), BUCKET, "data/lambda_phage.fa")
        yield local


def spot_job(name: str) -> dict[str, Any]:
    """CreateTrainingJob as start_training makes it (spot, checkpoints in S3); no
    sagemaker_submit_directory, so the emulation runs the repository's training_job/train.py."""
    return {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        "AlgorithmSpecification": {
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2.13-cu133-amzn2023-sagemaker",
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
        },
        "HyperParameters": {"sagemaker_program": "train.py", **HYPERPARAMETERS},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {
            "S3Uri": f"s3://{BUCKET}/checkpoints/{name}/",
            "LocalPath": "/opt/ml/checkpoints",
        },
        "Environment": {"OMP_NUM_THREADS": "1"},  # the same arithmetic in every run (see the docstring)
    }


def checkpoints_in_s3(aws: AwsServer, name: str) -> list[str]:
    listing = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"checkpoints/{name}/")
    return sorted(o["Key"].rsplit("/", 1)[1] for o in listing.get("Contents", []) if o["Key"].endswith(".pt"))


def ended(aws: AwsServer, name: str) -> dict[str, Any]:
    sagemaker = aws.client("sagemaker")
    return wait_for(
        lambda: sagemaker.describe_training_job(TrainingJobName=name),
        f"training job {name} to end",
        600,
        until=lambda job: job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"),
        interval_s=0.5,
    )


def artifact_metrics(aws: AwsServer, job: dict[str, Any]) -> dict[str, Any]:
    bucket, _, key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").partition("/")
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as artifact:
        return json.load(artifact.extractfile("metrics.json"))


def test_interrupted_spot_job_resumes_from_its_synced_checkpoints_and_ends_like_an_uninterrupted_one(
    aws: AwsServer,
) -> None:
    sagemaker = aws.client("sagemaker")
    sagemaker.create_training_job(**spot_job("uninterrupted"))
    sagemaker.create_training_job(**spot_job("interrupted"))

    # The first checkpoint reaches S3 while the job trains; then the spot instance is reclaimed.
    wait_for(
        lambda: checkpoints_in_s3(aws, "interrupted"),
        "a checkpoint synced to S3 mid-run",
        600,
        interval_s=0.1,
    )
    aws.interrupt_spot_training("interrupted")

    interrupted, uninterrupted = ended(aws, "interrupted"), ended(aws, "uninterrupted")
    assert interrupted["TrainingJobStatus"] == uninterrupted["TrainingJobStatus"] == "Completed", (
        interrupted.get("FailureReason"),
        uninterrupted.get("FailureReason"),
    )
    # It was restarted after the interruption and resumed from a checkpoint short of the end.
    secondary = [t["Status"] for t in interrupted["SecondaryStatusTransitions"]]
    assert secondary[secondary.index("Interrupted") :][:3] == ["Interrupted", "Downloading", "Training"]
    log = (aws.workdir / "sagemaker" / "training" / "interrupted" / "training.log").read_text()
    (resumed_at,) = [int(step) for step in re.findall(r"resuming from \S+ \(step (\d+)\)", log)]
    assert 0 < resumed_at < MAX_STEPS
    # It ends exactly where the uninterrupted job ends.
    final = {m["MetricName"]: m["Value"] for m in interrupted["FinalMetricDataList"]}
    expected = {m["MetricName"]: m["Value"] for m in uninterrupted["FinalMetricDataList"]}
    assert final["train:loss"] == expected["train:loss"] and final["eval:loss"] == expected["eval:loss"]
    resumed_metrics, whole_metrics = artifact_metrics(aws, interrupted), artifact_metrics(aws, uninterrupted)
    assert resumed_metrics["steps"] == whole_metrics["steps"] == MAX_STEPS
    assert resumed_metrics["eval_loss"] == whole_metrics["eval_loss"]
    assert resumed_metrics["train_loss"] == whole_metrics["train_loss"]
