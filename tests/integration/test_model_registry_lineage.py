"""The model registry says what a model was trained on: deploy_model reads the organisms, taxonomy
ids and molecule types ingest put in the tags of the job's read sets (real imports into the
HealthOmics emulation, tests/support/training_pipeline.py) and records them on the package."""

from __future__ import annotations

import pytest

from pipeline.ingest.fasta_stream import SequenceSummary
from pipeline.ingest.uploaded_fasta import read_set_tags
from tests.support.training_pipeline import TrainingPipeline, pipeline_fixture  # noqa: F401


def _genbank_tags(organism: str, taxonomy_id: str) -> dict[str, str]:
    """The tags ingest gives the read set of a one-record GenBank file."""
    summary = SequenceSummary(
        records=1,
        bases=48_502,
        lines=800,
        first_record_id="NC_001416.1",
        file_format="GenBank",
        organisms=(organism,),
        taxonomy_ids=(taxonomy_id,),
        molecule_types=("DNA",),
    )
    return read_set_tags(summary)


FASTA_TAGS = read_set_tags(SequenceSummary(records=2, bases=1_000, lines=20, first_record_id="contig1"))


def _registered_metadata(pipeline: TrainingPipeline, import_job_id: str) -> tuple[dict, dict[str, str]]:
    """start_training trains on the store, the job completes as a first model, deploy_model
    registers it; deploy_model's result and the package's CustomerMetadataProperties."""
    started = pipeline.start_training(pipeline.import_event(import_job_id))
    job = started["training_job"]
    pipeline.end_job(job, eval_perplexity=3.6)
    result = pipeline.deploy_model(pipeline.training_event(job, "Completed"))
    (package,) = pipeline.model_packages()
    return result, package["CustomerMetadataProperties"]


def test_a_registered_model_names_the_organisms_of_its_read_sets(pipeline: TrainingPipeline) -> None:
    # Given read sets of two GenBank genomes and one FASTA (whose headers name no organism)
    pipeline.import_reads("lambda", tags=_genbank_tags("Escherichia phage Lambda", "10710"))
    pipeline.import_reads("contigs", tags=FASTA_TAGS)
    last = pipeline.import_reads("phix", tags=_genbank_tags("Escherichia phage phiX174", "10847"))

    # When a job trains on them and deploy_model registers its model
    result, metadata = _registered_metadata(pipeline, last)

    # Then the package says what the model was trained on
    assert result["outcome"] == "deployed"
    assert metadata["ReadSetCount"] == "3"
    names = sorted(metadata["Organisms"].split(" / "))
    assert names == ["Escherichia phage Lambda", "Escherichia phage phiX174", "not recorded"]
    assert sorted(metadata["TaxonomyIds"].split(" / ")) == ["10710", "10847", "not recorded"]
    assert sorted(metadata["MoleculeTypes"].split(" / ")) == ["DNA", "not recorded"]
    # read through the HealthOmics rate limiter, one call per read set
    from pipeline.training.settings import DeploySettings

    lookups = [at for operation, at in pipeline.omics_requests if operation == "ListTagsForResource"]
    assert len(lookups) == 3
    gaps = [later - earlier for earlier, later in zip(lookups, lookups[1:], strict=False)]
    assert gaps == [pytest.approx(1 / DeploySettings.model_fields["omics_tps"].default)] * 2


def test_tags_that_cannot_be_read_leave_the_origins_unknown_and_the_model_registered(
    pipeline: TrainingPipeline,
) -> None:
    from pipeline.aws_clients import client

    # Given a read set, and HealthOmics throttling every try of the first tag lookup
    job_id = pipeline.import_reads("lambda", tags=_genbank_tags("Escherichia phage Lambda", "10710"))
    attempts = client("omics").meta.config.retries["total_max_attempts"]
    pipeline.stack.inject_throttling("omics", "ListTagsForResource", times=attempts)

    # When its job's model is registered
    result, metadata = _registered_metadata(pipeline, job_id)

    # Then the origins are unknown, and the model was registered and deployed all the same
    assert result["outcome"] == "deployed"
    assert (metadata["Organisms"], metadata["TaxonomyIds"], metadata["MoleculeTypes"]) == ("unknown",) * 3
    assert metadata["ReadSetCount"] == "1" and metadata["GateDecision"] == "Approved"
