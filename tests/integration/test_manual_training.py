"""`hyenaflow train`: a training job launched with the sagemaker SDK's ModelTrainer is the job
start_training creates, and it ends through the same events (quality gate, deployment).

The SDK cannot take an endpoint URL; it honours AWS_ENDPOINT_URL like every botocore client, so
it runs against the moto server and the local stack as it is. Requests are compared as they
went over HTTP (botocore `before-send` hooks on each side's client or session).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from hyenaflow.cli import main
from hyenaflow.local import start_aws_server
from hyenaflow.local.pipeline import REPO_ROOT, LocalPipeline, PipelineConfig, local_environment_overrides
from hyenaflow.manual_training import MANUAL_TRIGGER, start_manual_training
from tests.support import polling
from tests.support.training_budget import LEARNING_TRAINING
from tests.support.training_pipeline import TrainingPipeline, pipeline_fixture  # noqa: F401

LAMBDA = REPO_ROOT / "data" / "lambda_phage_NC_001416.fa"
# A few seconds of CPU training (as tests/e2e): the plumbing, not the learning.
TINY_BUDGET = {
    "MAX_STEPS": "4",
    "MAX_LENGTH": "128",
    "BATCH_SIZE": "4",
    "TRAINING_EXTRA_HYPERPARAMETERS": json.dumps(
        {"eval_interval": "4", "log_interval": "4", "eval_windows": "2"}
    ),
}
DEADLINE_S = 480.0


def _capture_create_training_job(events: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    events.register(
        "before-send.sagemaker.CreateTrainingJob", lambda request, **_: sent.append(json.loads(request.body))
    )
    return sent


def test_hyenaflow_train_sends_the_job_start_training_sends(pipeline: TrainingPipeline) -> None:
    from pipeline import aws_clients
    from pipeline.settings import load_settings
    from pipeline.state_table import PipelineState
    from pipeline.training.settings import TrainingSettings

    # Given a serving model (both warm-start from it) and the store's read sets
    PipelineState(pipeline.stack.client("dynamodb"), pipeline.stack.table).set_serving_model(
        {"model_name": "hyenaflow-1", "model_data_url": "s3://data/models/hyenaflow-1/output/model.tar.gz"}
    )
    lambda_sent = _capture_create_training_job(aws_clients.client("sagemaker").meta.events)
    session = boto3.Session(region_name="us-east-1")
    sdk_sent = _capture_create_training_job(session.events)

    import_job = pipeline.import_reads("phage")

    # When start_training handles an import and `hyenaflow train` is pointed at the same data
    assert pipeline.start_training(pipeline.import_event(import_job))["outcome"] == "started"
    settings = load_settings(TrainingSettings)  # start_training's variables (the fixture set them)
    job_name = start_manual_training(session, settings, s3_uri=pipeline.stack.store_s3_uri)

    # Then the two CreateTrainingJob requests are the same job
    (from_lambda,), (from_sdk,) = lambda_sent, sdk_sent
    assert from_sdk["TrainingJobName"] == job_name
    base_name = from_sdk["CheckpointConfig"]["S3Uri"].removeprefix(
        f"s3://{settings.data_bucket}/checkpoints/"
    )
    assert job_name.startswith(f"{settings.job_name_prefix}-manual-")  # deploy_model's rule: the prefix
    assert job_name.startswith(base_name.rstrip("/") + "-")  # ModelTrainer adds a timestamp
    for name in ("HyperParameters", "AlgorithmSpecification", "InputDataConfig", "ResourceConfig"):
        assert from_sdk[name] == from_lambda[name], name
    for name in ("StoppingCondition", "EnableManagedSpotTraining", "RoleArn", "TensorBoardOutputConfig"):
        assert from_sdk[name] == from_lambda[name], name
    assert from_sdk["HyperParameters"]["init_from"] == "s3://data/models/hyenaflow-1/output/model.tar.gz"
    assert from_sdk["CheckpointConfig"] == {
        **from_lambda["CheckpointConfig"],
        "S3Uri": f"s3://{settings.data_bucket}/checkpoints/{base_name}",
    }
    assert from_lambda["Tags"] == [{"Key": "hyenaflow:trigger", "Value": import_job}]
    assert from_sdk["Tags"] == [{"Key": "hyenaflow:trigger", "Value": MANUAL_TRIGGER}]
    # the SDK spells out SageMaker's default compression; nothing else differs
    assert from_sdk["OutputDataConfig"] == {**from_lambda["OutputDataConfig"], "CompressionType": "GZIP"}
    assert set(from_sdk) == set(from_lambda)


@pytest.mark.slow
def test_read_sets_are_given_to_the_job_as_a_manifest_of_their_files(tmp_path: Path, monkeypatch) -> None:
    from pipeline.settings import load_settings
    from pipeline.training.settings import TrainingSettings

    with start_aws_server(tmp_path / "aws") as aws:
        for name, value in aws.env().items():
            monkeypatch.setenv(name, value)
        omics, s3 = aws.client("omics"), aws.client("s3")
        s3.create_bucket(Bucket="data")
        s3.create_bucket(Bucket="data-other")
        store = omics.create_sequence_store(name="reads")["id"]
        # Given two read sets in the store (a FASTQ each) and a third the job must not see
        read_sets = [_import_fastq(aws, store, f"genome-{i}", seed=i) for i in range(3)]
        wanted = read_sets[:2]
        code = tmp_path / "sourcedir.tar.gz"
        from hyenaflow.packaging import build_training_bundle

        build_training_bundle(code)
        s3.upload_file(str(code), "data", "code/training/sourcedir.tar.gz")
        settings = load_settings(
            TrainingSettings,
            {
                **TINY_BUDGET,
                "STATE_TABLE": "unused",
                "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:unused",
                "DATA_BUCKET": "data",
                "SEQUENCE_STORE_ID": store,
                "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sagemaker",
                "TRAINING_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2.13-cpu-amzn2023-sagemaker",
                "TRAINING_SOURCE_URI": "s3://data/code/training/sourcedir.tar.gz",
                "TRAINING_INSTANCE_TYPE": "ml.m5.xlarge",
                "USE_SPOT": "false",
                "AWS_REGION": aws.region,
            },
        )
        session = boto3.Session(region_name=aws.region)
        sent = _capture_create_training_job(session.events)

        # When `hyenaflow train` is given two of them
        job_name = start_manual_training(session, settings, read_set_ids=wanted, warm_start=False)

        # Then the job's channel is a manifest of exactly their files under the store's S3 URI
        (request,) = sent
        source = request["InputDataConfig"][0]["DataSource"]["S3DataSource"]
        assert source["S3DataType"] == "ManifestFile"
        bucket, _, key = source["S3Uri"].removeprefix("s3://").partition("/")
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        store_uri = omics.get_sequence_store(id=store)["s3Access"]["s3Uri"]
        assert manifest[0] == {"prefix": store_uri}
        assert sorted(manifest[1:]) == sorted(
            f"readSet/{rid}/genome-{i}.fastq.gz" for i, rid in enumerate(wanted)
        )
        # and the job trains on them and completes
        sagemaker = aws.client("sagemaker")
        job = polling.wait_for(
            lambda: (
                (d := sagemaker.describe_training_job(TrainingJobName=job_name))["TrainingJobStatus"]
                in ("Completed", "Failed", "Stopped")
                and d
            ),
            f"training job {job_name} to end",
            DEADLINE_S,
            interval_s=0.5,
        )
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        log = (aws.workdir / "sagemaker" / "training" / job_name / "training.log").read_text()
        assert "downloaded 2 objects listed in" in log


def _import_fastq(aws: Any, store: str, name: str, seed: int) -> str:
    import random

    rng = random.Random(seed)
    reads = "".join(
        f"@{name}:{i * 500}-{(i + 1) * 500}\n{''.join(rng.choice('ACGT') for _ in range(500))}\n+\n{'I' * 500}\n"
        for i in range(8)
    )
    key = f"staged/{name}.fastq.gz"  # HealthOmics imports gzipped FASTQ
    aws.client("s3").put_object(Bucket="data-other", Key=key, Body=gzip.compress(reads.encode()))
    omics = aws.client("omics")
    job = omics.start_read_set_import_job(
        sequenceStoreId=store,
        roleArn="arn:aws:iam::123456789012:role/omics-import",
        sources=[
            {
                "sourceFiles": {"source1": f"s3://data-other/{key}"},
                "sourceFileType": "FASTQ",
                "subjectId": name,
                "sampleId": name,
            }
        ],
    )
    done = polling.wait_for(
        lambda: (
            (j := omics.get_read_set_import_job(sequenceStoreId=store, id=job["id"]))["status"] == "COMPLETED"
            and j
        ),
        f"import of {name}",
        60,
        interval_s=0.2,
    )
    return done["sources"][0]["readSetId"]


@pytest.mark.slow
def test_a_job_started_with_hyenaflow_train_is_gated_and_deployed_like_any_other(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    config = PipelineConfig(
        # A budget that learns: the quality gate deploys no first model above 4.0 (uniform ACGT).
        workdir=tmp_path / "local",
        environment_overrides=local_environment_overrides(LEARNING_TRAINING),
    )
    with LocalPipeline(config) as pipeline:
        for name, value in pipeline.env().items():
            monkeypatch.setenv(name, value)
        # Given a deployed stack: its start_training function's settings, as CloudFormation and
        # Lambda answer them, and a genome under a prefix no event watches
        start_training = pipeline.function("StartTrainingFunction")
        pipeline.client("cloudformation").create_stack(
            StackName="deployed", TemplateBody=json.dumps(_stack_with_function(start_training.environment))
        )
        pipeline.put_file(LAMBDA, key="manual/lambda_phage.fa")

        # When a job is started by hand on that prefix
        code = main(["train", "--stack-name", "deployed", "--s3-uri", f"s3://{pipeline.data_bucket}/manual/"])

        # Then it trains, deploy_model's rule sees it end, the quality gate lets it through
        # (nothing serves yet) and the endpoint serves its model
        assert code == 0
        job_name = capsys.readouterr().out.split("started training job ", 1)[1].split(";")[0]
        sagemaker = pipeline.client("sagemaker")
        endpoint = polling.wait_for(
            lambda: [
                e
                for e in sagemaker.list_endpoints()["Endpoints"]
                if e["EndpointStatus"] in ("InService", "Failed")
            ],
            "deploy_model to deploy the manual job's model",
            DEADLINE_S,
            interval_s=0.5,
        )[0]
        assert endpoint["EndpointStatus"] == "InService"
        config_name = sagemaker.describe_endpoint(EndpointName=endpoint["EndpointName"])["EndpointConfigName"]
        assert config_name == job_name
        job = sagemaker.describe_training_job(TrainingJobName=job_name)
        assert job["TrainingJobStatus"] == "Completed"
        assert {"Key": "hyenaflow:trigger", "Value": MANUAL_TRIGGER} in sagemaker.list_tags(
            ResourceArn=job["TrainingJobArn"]
        )["Tags"]
        # the pipeline's own training slot was never taken
        assert [j["TrainingJobName"] for j in sagemaker.list_training_jobs()["TrainingJobSummaries"]] == [
            job_name
        ]
        assert pipeline.delivery_errors() == []


def _stack_with_function(environment: dict[str, str]) -> dict[str, Any]:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    return {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}},
            "StartTrainingFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "start_training.handler.lambda_handler",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Code": {"ZipFile": "def lambda_handler(event, context): pass"},
                    "Environment": {"Variables": {k: str(v) for k, v in environment.items()}},
                },
            },
        }
    }


def test_hyenaflow_train_without_a_deployed_stack_says_so(capsys) -> None:
    from tests.support.lambda_env import moto_stack

    with moto_stack():
        code = main(
            ["train", "--stack-name", "not-deployed", "--s3-uri", "s3://data/x/", "--region", "us-east-1"]
        )
    assert code == 1
    assert "stack not-deployed: cannot read start_training's settings" in capsys.readouterr().err
