"""A GenBank flat file through the whole local stack: incoming/ -> ingest -> HealthOmics import ->
training -> model registry, with what the record says about its organism kept on the read set and
on the registered model.

The HealthOmics emulation names the read-set files after their slot (`source1`, no extension),
so the training job can only find them by content. Every wait polls with a deadline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hyenaflow.local.pipeline import REPO_ROOT, LocalPipeline, PipelineConfig, local_environment_overrides
from tests.support import polling

pytestmark = pytest.mark.slow

GENBANK = REPO_ROOT / "tests" / "fixtures" / "flatfiles" / "NC_005816.gb"  # Yersinia pestis plasmid pPCP1
SMALL_TRAINING = {
    "MAX_STEPS": "4",
    "MAX_LENGTH": "128",
    "BATCH_SIZE": "2",
    "TRAINING_EXTRA_HYPERPARAMETERS": json.dumps(
        {"eval_interval": "4", "log_interval": "2", "eval_windows": "2"}
    ),
}
DEADLINE_S = 480.0


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    return polling.wait_for(condition, what, DEADLINE_S, interval_s=0.5)


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[LocalPipeline]:
    config = PipelineConfig(
        workdir=tmp_path / "local",
        environment_overrides=local_environment_overrides(SMALL_TRAINING),
        read_set_file_names="source",
    )
    with LocalPipeline(config) as running:
        yield running
        assert running.delivery_errors() == []


def test_genbank_file_in_incoming_trains_and_its_read_set_names_the_organism(pipeline: LocalPipeline) -> None:
    omics, sagemaker = pipeline.client("omics"), pipeline.client("sagemaker")
    store = pipeline.sequence_store_id

    pipeline.put_file(GENBANK, key="incoming/plasmids/NC_005816.gb")

    (read_set,) = wait_for(lambda: omics.list_read_sets(sequenceStoreId=store)["readSets"], "the read set")
    metadata = omics.get_read_set_metadata(sequenceStoreId=store, id=read_set["id"])
    assert metadata["sampleId"] == "NC_005816"
    assert metadata["description"] == (
        "1 GenBank records, 9609 bases, first NC_005816.1; organism Yersinia pestis biovar Microtus "
        "str. 91001 (taxon 229193); DNA"
    )
    assert metadata["files"]["source1"]["s3Access"]["s3Uri"].endswith(f"/readSet/{read_set['id']}/source1")
    tags = omics.list_tags_for_resource(resourceArn=metadata["arn"])["tags"]
    assert {k: tags[k] for k in tags if k != "hyenaflow:etag" and k != "hyenaflow:source"} == {
        "hyenaflow:format": "GenBank",
        "hyenaflow:organism": "Yersinia pestis biovar Microtus str. 91001",
        "hyenaflow:taxonomy-id": "229193",
        "hyenaflow:molecule-type": "DNA",
    }

    job = polling.ended_training_job(sagemaker, DEADLINE_S)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert 1.0 < metrics["eval:perplexity"] < 12.0

    # And the model registry says what the model was trained on (deploy_model reads the tags)
    (package,) = wait_for(
        lambda: sagemaker.list_model_packages(ModelPackageGroupName=pipeline.model_package_group)[
            "ModelPackageSummaryList"
        ],
        "deploy_model to register the job's model",
    )
    described = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    metadata = described["CustomerMetadataProperties"]
    assert metadata["TrainingJob"] == job["TrainingJobName"]
    assert (metadata["Organisms"], metadata["TaxonomyIds"], metadata["MoleculeTypes"]) == (
        "Yersinia pestis biovar Microtus str. 91001",
        "229193",
        "DNA",
    )
