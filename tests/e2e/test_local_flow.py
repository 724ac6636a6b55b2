"""The whole pipeline on the local stack, as `make demo` runs it, with a smaller training budget.

A real genome dropped into incoming/ must become a read set, a Completed training job whose model
learned (eval perplexity below the 4.0 of a uniform guess), and an InService endpoint whose scores
are the trained model's own; a bad file must end in rejected/ without starting anything. Every
wait polls with a deadline.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hyenaflow.client import invoke
from hyenaflow.local.pipeline import REPO_ROOT, LocalPipeline, PipelineConfig, local_environment_overrides
from tests.support import polling
from tests.support.direct_model import direct_log_likelihood
from tests.support.tolerances import summed_log_likelihood_atol
from tests.support.training_budget import LEARNING_TRAINING

pytestmark = pytest.mark.slow

LAMBDA_PHAGE = REPO_ROOT / "data" / "lambda_phage_NC_001416.fa"
FLOW_DEADLINE_S = 480.0


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = FLOW_DEADLINE_S) -> Any:
    return polling.wait_for(condition, what, timeout_s, interval_s=0.5)


@pytest.fixture
def pipeline(tmp_path: Path):
    config = PipelineConfig(
        workdir=tmp_path / "local", environment_overrides=local_environment_overrides(LEARNING_TRAINING)
    )
    with LocalPipeline(config) as pipeline:
        yield pipeline
        assert pipeline.delivery_errors() == []


def _subscribe_queue_to_alerts(pipeline: LocalPipeline) -> str:
    sqs, sns = pipeline.client("sqs"), pipeline.client("sns")
    url = sqs.create_queue(QueueName="e2e-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = pipeline.resources[pipeline.resource_of_type("AWS::SNS::Topic")].ref
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def test_genome_in_incoming_ends_as_an_endpoint_that_scores_dna(pipeline: LocalPipeline) -> None:
    omics, sagemaker, s3 = pipeline.client("omics"), pipeline.client("sagemaker"), pipeline.client("s3")

    pipeline.put_file(LAMBDA_PHAGE)

    # a read set in the sequence store, from the staged FASTQ tiles
    read_sets = wait_for(
        lambda: omics.list_read_sets(sequenceStoreId=pipeline.sequence_store_id)["readSets"], "the read set"
    )
    assert [r["sampleId"] for r in read_sets] == ["lambda_phage_NC_001416"]
    assert s3.list_objects_v2(Bucket=pipeline.data_bucket, Prefix="staged/")["KeyCount"] >= 1

    # one training job, Completed, with the metrics the quality gate reads
    job = polling.ended_training_job(sagemaker, FLOW_DEADLINE_S)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    # It learned: the quality gate's figure is below a uniform guess over ACGT (4.0), which an
    # untrained (~12) or broken model cannot reach; this budget reaches ~3.83 (LEARNING_TRAINING).
    assert 1.0 < metrics["best:eval_perplexity"] < 4.0
    bucket, _, key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").partition("/")
    artifact = tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    names = set(artifact.getnames())
    assert {"config.json", "model.safetensors", "metrics.json", "loss.png", "perplexity.png"} <= names
    written = json.load(artifact.extractfile("metrics.json"))
    assert written["steps"] == int(LEARNING_TRAINING["MAX_STEPS"])
    assert written["eval_perplexity"] == pytest.approx(metrics["best:eval_perplexity"], abs=1e-6)

    # registered in the model registry, Approved as the first model
    (package,) = wait_for(
        lambda: sagemaker.list_model_packages(ModelPackageGroupName=pipeline.model_package_group)[
            "ModelPackageSummaryList"
        ],
        "deploy_model to register the model",
    )
    assert package["ModelApprovalStatus"] == "Approved"

    trained_dir = pipeline.workdir / "trained-model"
    artifact.extractall(
        trained_dir, members=[artifact.getmember(n) for n in ("config.json", "model.safetensors")]
    )

    # one endpoint, InService, answering score on raw DNA
    endpoint = wait_for(
        lambda: [
            e
            for e in sagemaker.list_endpoints()["Endpoints"]
            if e["EndpointStatus"] in ("InService", "Failed")
        ],
        "deploy_model to bring the endpoint InService",
    )[0]
    assert endpoint["EndpointStatus"] == "InService"
    answer = invoke(
        {"task": "score", "sequences": ["ACGTTGCAGGCTAGCTAGGATCCA"]},
        endpoint_name=endpoint["EndpointName"],
        runtime_client=pipeline.client("sagemaker-runtime"),
    )
    (result,) = answer["results"]
    # the score is the trained model's own log-likelihood of the sequence, computed directly
    assert result["length"] == 24
    assert result["log_likelihood"] == pytest.approx(
        direct_log_likelihood(trained_dir, "ACGTTGCAGGCTAGCTAGGATCCA"), abs=summed_log_likelihood_atol(23)
    )
    assert result["perplexity"] == pytest.approx(math.exp(-result["log_likelihood"] / 23))


def test_protein_fasta_is_rejected_without_starting_anything(pipeline: LocalPipeline) -> None:
    alerts = _subscribe_queue_to_alerts(pipeline)
    s3 = pipeline.client("s3")
    protein = pipeline.workdir / "insulin_protein.fa"
    protein.write_text(
        ">sp|P01308|INS_HUMAN Insulin\nMALWMRLLPLLALLALWGPDPAAAFVNQHLCGSHLVEALYLVCGERGFFYTPKT\n"
    )

    pipeline.put_file(protein)

    moved = wait_for(
        lambda: s3.list_objects_v2(Bucket=pipeline.data_bucket, Prefix="rejected/").get("Contents"),
        "the file to be moved to rejected/",
    )
    ingest = pipeline.function_for_handler("ingest_fasta").logical_id
    wait_for(
        lambda: any(fid == ingest and r.ok for fid, _, r in pipeline.runtime.invocations),
        "ingest_fasta to return",
    )
    assert sorted(o["Key"] for o in moved) == [
        "rejected/insulin_protein.fa",
        "rejected/insulin_protein.fa.reason.json",
    ]
    assert "Contents" not in s3.list_objects_v2(Bucket=pipeline.data_bucket, Prefix="incoming/")
    reason_object = s3.get_object(Bucket=pipeline.data_bucket, Key="rejected/insulin_protein.fa.reason.json")
    reason = json.loads(reason_object["Body"].read())
    assert reason["line"] == 2
    alert = wait_for(
        lambda: pipeline.client("sqs").receive_message(QueueUrl=alerts, WaitTimeSeconds=0).get("Messages"),
        "the rejection alert",
        timeout_s=30,
    )
    assert "insulin_protein.fa" in alert[0]["Body"]
    # nothing started: no import job, no training job, and no event waiting to start one
    omics = pipeline.client("omics")
    assert omics.list_read_set_import_jobs(sequenceStoreId=pipeline.sequence_store_id)["importJobs"] == []
    assert pipeline.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    assert pipeline.runtime.exhausted == []
