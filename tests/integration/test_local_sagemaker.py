"""Local SageMaker training jobs: a real script runs as a subprocess under the SageMaker contract."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hyenaflow.local import AwsServer, start_aws_server, wait_for
from tests.support.archives import tar_gz

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
ENDED = {"Completed", "Failed", "Stopped"}
METRICS = [
    {"Name": "train:loss", "Regex": r"\[train\] step=\d+ loss=([0-9.]+)"},
    {"Name": "eval:perplexity", "Regex": r"\[eval\] step=\d+ loss=[0-9.]+ perplexity=([0-9.]+)"},
]

# A stand-in for training_job/train.py: same CLI/env contract, metric lines as docs/contracts.md.
FAKE_TRAIN = textwrap.dedent(
    """
    import argparse, json, os, sys, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--mode", default="ok")
    args = parser.parse_args()  # fails on any unexpected argument (e.g. a sagemaker_* one)
    train_dir = os.environ["SM_CHANNEL_TRAIN"]
    if args.mode == "crash":
        print("loading data", flush=True)
        print("ValueError: reads.fastq.gz line 3: bad base", file=sys.stderr, flush=True)
        sys.exit(2)
    if args.mode == "hang":
        print("waiting to be stopped", flush=True)
        while True:
            time.sleep(0.05)
    if args.mode == "spot" and not os.listdir(os.environ["SM_CHECKPOINT_DIR"]):
        # first start: checkpoint, then train on until the spot instance is taken away
        with open(os.path.join(os.environ["SM_CHECKPOINT_DIR"], "step-1.txt"), "w") as out:
            out.write("weights")
        while True:
            time.sleep(0.05)
    for step in range(1, args.steps + 1):
        print(f"[train] step={step} loss={1.0 / step:.6f} perplexity=2.0 tokens_per_s=100.0 lr=0.001")
    print(f"[eval] step={args.steps} loss=0.500000 perplexity={args.steps * 1.5:.6f}")
    checkpoints = os.environ["SM_CHECKPOINT_DIR"]
    seen = sorted(os.listdir(checkpoints))
    with open(os.path.join(checkpoints, f"step-{args.steps}.txt"), "w") as out:
        out.write("weights")
    with open(os.path.join(os.environ["SM_TENSORBOARD_DIR"], "events.out.tfevents.1"), "w") as out:
        out.write("scalars")
    report = {
        "checkpoints_seen": seen,
        "channel_files": sorted(os.listdir(train_dir)),
        "steps": args.steps,
        "hp_env": os.environ["SM_HP_STEPS"],
        "job": os.environ["TRAINING_JOB_NAME"],
    }
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "report.json"), "w") as out:
        json.dump(report, out)
    """
)


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsServer]:
    with start_aws_server(tmp_path_factory.mktemp("local-aws")) as local:
        yield local


@pytest.fixture(scope="module")
def bucket(aws: AwsServer) -> str:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="training-bucket")
    s3.put_object(Bucket="training-bucket", Key="readsets/a.fastq.gz", Body=b"a")
    s3.put_object(Bucket="training-bucket", Key="readsets/sub/b.fastq.gz", Body=b"b")
    s3.put_object(
        Bucket="training-bucket", Key="code/sourcedir.tar.gz", Body=tar_gz({"train.py": FAKE_TRAIN})
    )
    return "training-bucket"


def job_request(bucket: str, instance_type: str = "ml.g5.2xlarge", **hyperparameters: str) -> dict[str, Any]:
    """A CreateTrainingJob request as the SageMaker SDK / start_training Lambda shape it."""
    return {
        "AlgorithmSpecification": {
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-gpu-py311",
            "TrainingInputMode": "File",
            "MetricDefinitions": METRICS,
        },
        "RoleArn": ROLE,
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": f'"s3://{bucket}/code/sourcedir.tar.gz"',
            **hyperparameters,
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/readsets/"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/jobs"},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }


def wait_ended(aws: AwsServer, name: str) -> dict[str, Any]:
    sagemaker = aws.client("sagemaker")
    return wait_for(
        lambda: sagemaker.describe_training_job(TrainingJobName=name),
        f"training job {name} to end",
        60,
        until=lambda r: r["TrainingJobStatus"] in ENDED,
    )


def job_events(aws: AwsServer, name: str) -> list[str]:
    return [
        e["detail"]["TrainingJobStatus"]
        for e in aws.events.history
        if e["detail-type"] == "SageMaker Training Job State Change"
        and e["detail"]["TrainingJobName"] == name
    ]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_training_job_runs_script_and_completes_with_metrics_and_model(aws: AwsServer, bucket: str) -> None:
    sagemaker, s3 = aws.client("sagemaker"), aws.client("s3")
    name = unique("hyenadna")

    sagemaker.create_training_job(TrainingJobName=name, **job_request(bucket, steps='"4"'))
    job = wait_ended(aws, name)

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job_events(aws, name) == ["InProgress", "Completed"]
    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert final == {"train:loss": pytest.approx(0.25), "eval:perplexity": pytest.approx(6.0)}
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == METRICS
    model_uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_uri == f"s3://{bucket}/jobs/{name}/output/model.tar.gz"
    archive = s3.get_object(Bucket=bucket, Key=f"jobs/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        report = json.load(tar.extractfile("report.json"))  # type: ignore[arg-type]
    assert report == {
        "checkpoints_seen": [],
        "channel_files": ["a.fastq.gz", "sub"],
        "steps": 4,
        "hp_env": "4",
        "job": name,
    }
    summaries = sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert [(s["TrainingJobName"], s["TrainingJobStatus"]) for s in summaries] == [(name, "Completed")]


def test_checkpoints_and_tensorboard_logs_sync_with_their_s3_uris(aws: AwsServer, bucket: str) -> None:
    s3, name = aws.client("s3"), unique("resume")
    s3.put_object(Bucket=bucket, Key=f"checkpoints/{name}/step-1.txt", Body=b"earlier")
    request = job_request(bucket, steps="3") | {
        "CheckpointConfig": {
            "S3Uri": f"s3://{bucket}/checkpoints/{name}",
            "LocalPath": "/opt/ml/checkpoints",
        },
        "TensorBoardOutputConfig": {"S3OutputPath": f"s3://{bucket}/tensorboard"},
    }

    aws.client("sagemaker").create_training_job(TrainingJobName=name, **request)
    job = wait_ended(aws, name)

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    archive = s3.get_object(Bucket=bucket, Key=f"jobs/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert json.load(tar.extractfile("report.json"))["checkpoints_seen"] == ["step-1.txt"]  # type: ignore[arg-type]
    saved = s3.list_objects_v2(Bucket=bucket, Prefix=f"checkpoints/{name}/")["Contents"]
    assert sorted(item["Key"].rsplit("/", 1)[1] for item in saved) == ["step-1.txt", "step-3.txt"]
    tensorboard = s3.list_objects_v2(Bucket=bucket, Prefix=f"tensorboard/{name}/")["Contents"]
    assert [item["Key"] for item in tensorboard] == [
        f"tensorboard/{name}/tensorboard-output/events.out.tfevents.1"
    ]


def test_interrupted_spot_job_restarts_from_the_checkpoints_it_synced_while_running(
    aws: AwsServer, bucket: str
) -> None:
    s3, name = aws.client("s3"), unique("spot")
    request = job_request(bucket, steps="3", mode="spot") | {
        "EnableManagedSpotTraining": True,
        "StoppingCondition": {"MaxRuntimeInSeconds": 120, "MaxWaitTimeInSeconds": 240},
        "CheckpointConfig": {
            "S3Uri": f"s3://{bucket}/checkpoints/{name}/",
            "LocalPath": "/opt/ml/checkpoints",
        },
    }
    aws.client("sagemaker").create_training_job(TrainingJobName=name, **request)

    # The checkpoint reaches S3 while the script still runs, as SageMaker syncs it ...
    wait_for(
        lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"checkpoints/{name}/").get("KeyCount"),
        "the checkpoint to be synced mid-run",
        60,
    )
    # ... then the spot instance is reclaimed: the job restarts on a new one from S3's checkpoints
    aws.interrupt_spot_training(name)
    job = wait_ended(aws, name)

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    secondary = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert secondary[secondary.index("Interrupted") :] == [
        "Interrupted",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert job_events(aws, name) == ["InProgress", "Completed"]  # InProgress throughout the restart
    archive = s3.get_object(Bucket=bucket, Key=f"jobs/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert json.load(tar.extractfile("report.json"))["checkpoints_seen"] == ["step-1.txt"]  # type: ignore[arg-type]


def test_only_a_running_managed_spot_job_can_be_interrupted(aws: AwsServer, bucket: str) -> None:
    name = unique("on-demand")
    aws.client("sagemaker").create_training_job(TrainingJobName=name, **job_request(bucket, steps="1"))
    with pytest.raises(ValueError, match="not a managed spot job"):
        aws.interrupt_spot_training(name)
    wait_ended(aws, name)


def test_failing_script_ends_failed_with_the_tail_of_stderr(aws: AwsServer, bucket: str) -> None:
    name = unique("crash")

    aws.client("sagemaker").create_training_job(
        TrainingJobName=name, **job_request(bucket, steps="1", mode="crash")
    )
    job = wait_ended(aws, name)

    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 2")
    assert "ValueError: reads.fastq.gz line 3: bad base" in job["FailureReason"]
    assert job_events(aws, name) == ["InProgress", "Failed"]
    assert "loading data" in (aws.workdir / "sagemaker/training" / name / "training.log").read_text()


def test_duplicate_training_job_name_is_refused(aws: AwsServer, bucket: str) -> None:
    sagemaker = aws.client("sagemaker")
    name = unique("twice")
    sagemaker.create_training_job(TrainingJobName=name, **job_request(bucket, steps="1"))

    with pytest.raises(ClientError) as error:
        sagemaker.create_training_job(TrainingJobName=name, **job_request(bucket, steps="1"))

    assert error.value.response["Error"]["Code"] == "ResourceInUse"
    wait_ended(aws, name)


def test_concurrent_creates_of_one_name_start_exactly_one_job(aws: AwsServer, bucket: str) -> None:
    """Replayed events can reach two Lambda instances at once; AWS starts one job, refuses the rest."""
    name = unique("replayed")
    clients = [aws.client("sagemaker") for _ in range(4)]

    def create(client: Any) -> str:
        try:
            client.create_training_job(TrainingJobName=name, **job_request(bucket, steps="1"))
            return "created"
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(create, clients))

    assert outcomes == ["ResourceInUse", "ResourceInUse", "ResourceInUse", "created"]
    assert wait_ended(aws, name)["TrainingJobStatus"] == "Completed"
    assert job_events(aws, name) == ["InProgress", "Completed"]


def test_stop_training_job_kills_the_script_and_ends_stopped(aws: AwsServer, bucket: str) -> None:
    sagemaker = aws.client("sagemaker")
    name = unique("stop")
    sagemaker.create_training_job(TrainingJobName=name, **job_request(bucket, steps="1", mode="hang"))
    log = aws.workdir / "sagemaker/training" / name / "training.log"
    wait_for(lambda: log.is_file() and "waiting to be stopped" in log.read_text(), "script start")

    sagemaker.stop_training_job(TrainingJobName=name)
    job = wait_ended(aws, name)

    assert job["TrainingJobStatus"] == "Stopped"
    assert job_events(aws, name) == ["InProgress", "Stopping", "Stopped"]
    with pytest.raises(ClientError) as error:
        sagemaker.stop_training_job(TrainingJobName=name)
    assert "training job is in status Stopped" in error.value.response["Error"]["Message"]


def test_job_past_max_runtime_is_stopped(aws: AwsServer, bucket: str) -> None:
    request = job_request(bucket, steps="1", mode="hang") | {"StoppingCondition": {"MaxRuntimeInSeconds": 1}}
    name = unique("timeout")

    aws.client("sagemaker").create_training_job(TrainingJobName=name, **request)
    job = wait_ended(aws, name)

    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_empty_training_channel_fails_like_sagemaker(aws: AwsServer, bucket: str) -> None:
    request = job_request(bucket, steps="1")
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{bucket}/nothing-here/"
    name = unique("empty")

    aws.client("sagemaker").create_training_job(TrainingJobName=name, **request)
    job = wait_ended(aws, name)

    assert job["TrainingJobStatus"] == "Failed"
    assert "No S3 objects found under S3 URL" in job["FailureReason"]


@pytest.mark.parametrize("instance_type", ["ml.g5.2xlarge", "ml.g6.2xlarge", "ml.p4d.24xlarge"])
def test_gpu_training_instance_types_are_accepted(aws: AwsServer, bucket: str, instance_type: str) -> None:
    name = unique("gpu")

    aws.client("sagemaker").create_training_job(
        TrainingJobName=name, **job_request(bucket, instance_type, steps="1")
    )

    assert wait_ended(aws, name)["ResourceConfig"]["InstanceType"] == instance_type


def test_unknown_training_instance_type_is_refused(aws: AwsServer, bucket: str) -> None:
    with pytest.raises(ClientError) as error:
        aws.client("sagemaker").create_training_job(
            TrainingJobName=unique("bad"), **job_request(bucket, "ml.banana.xlarge", steps="1")
        )

    assert error.value.response["Error"]["Code"] == "ValidationException"
