"""What the model registry records of a job's read sets' origins (model_registry.ReadSetOrigins):
the organisms, taxonomy ids and molecule types ingest put in their tags, within the metadata limits."""

from __future__ import annotations

from hyenaflow.local.sagemaker.model_packages import validate_customer_metadata
from pipeline.read_set_tags import MOLECULE_TYPE_TAG, ORGANISM_TAG, TAXONOMY_ID_TAG
from pipeline.training.model_registry import (
    METADATA_VALUE_MAX,
    DataLineage,
    ReadSetOrigins,
    fitted_listing,
    package_metadata,
)
from pipeline.training.quality_gate import GateFigures, quality_gate

LAMBDA = {ORGANISM_TAG: "Escherichia phage Lambda", TAXONOMY_ID_TAG: "10710", MOLECULE_TYPE_TAG: "DNA"}
PHIX = {ORGANISM_TAG: "Escherichia phage phiX174", TAXONOMY_ID_TAG: "10847", MOLECULE_TYPE_TAG: "DNA"}
FASTA = {"hyenaflow:format": "FASTA"}  # a FASTA header names no organism


def test_each_organism_is_listed_once_in_order_of_first_appearance() -> None:
    origins = ReadSetOrigins((LAMBDA, PHIX, LAMBDA))

    assert origins.metadata() == {
        "Organisms": "Escherichia phage Lambda / Escherichia phage phiX174",
        "TaxonomyIds": "10710 / 10847",
        "MoleculeTypes": "DNA",
    }


def test_a_read_set_of_several_organisms_lists_each_of_them() -> None:
    # ingest joins a flat file's distinct organisms with "; " and its ids with ", "
    mixed = {ORGANISM_TAG: "Yersinia pestis; Escherichia phage Lambda", TAXONOMY_ID_TAG: "632, 10710"}

    origins = ReadSetOrigins((mixed, LAMBDA))

    assert origins.listing(ORGANISM_TAG) == "Yersinia pestis / Escherichia phage Lambda"
    assert origins.listing(TAXONOMY_ID_TAG) == "632 / 10710"


def test_read_sets_without_the_tags_are_not_recorded_and_failed_lookups_unknown() -> None:
    assert ReadSetOrigins((FASTA,)).metadata() == dict.fromkeys(
        ("Organisms", "TaxonomyIds", "MoleculeTypes"), "not recorded"
    )
    origins = ReadSetOrigins((LAMBDA, FASTA, None))
    assert origins.listing(ORGANISM_TAG) == "Escherichia phage Lambda / not recorded / unknown"


def test_read_sets_past_the_lookup_cap_are_counted_not_named() -> None:
    origins = ReadSetOrigins((LAMBDA,) * 20, not_looked_up=7)

    assert origins.listing(ORGANISM_TAG) == "Escherichia phage Lambda +7 read sets not looked up"


def test_a_job_without_read_sets_trained_on_none_and_one_not_looked_up_on_unknown() -> None:
    assert ReadSetOrigins(()).listing(ORGANISM_TAG) == "none"
    lineage = DataLineage(training_data="s3://store/", read_set_ids=None, warm_start_from=None)
    assert {key: lineage.metadata()[key] for key in ("Organisms", "TaxonomyIds")} == {
        "Organisms": "unknown",
        "TaxonomyIds": "unknown",
    }


def test_a_long_listing_keeps_whole_names_within_the_metadata_value_limit() -> None:
    names = [f"Streptomyces phage number {i:03d} isolated from soil" for i in range(40)]

    listing = fitted_listing(names, "+5 read sets not looked up")

    assert len(listing) <= METADATA_VALUE_MAX
    shown = listing.split(" +")[0].split(" / ")
    assert shown == names[: len(shown)]  # whole names, in order
    assert listing.endswith(f" +{40 - len(shown)} more +5 read sets not looked up")
    # one name longer than a value: as much of it as fits
    assert fitted_listing(["x" * 300]) == "x" * METADATA_VALUE_MAX


def test_organisms_with_characters_metadata_refuses_are_recorded_within_its_constraints() -> None:
    # botocore CustomerMetadataMap values: letters, digits, spaces and _.:/=+-@ only, <= 256
    odd = {ORGANISM_TAG: "Influenza A virus (A/Puerto Rico/8/1934(H1N1)); Salmonella enterica, subsp. I"}
    lineage = DataLineage(
        training_data="s3://store/",
        read_set_ids=["1"] * 30,
        warm_start_from=None,
        origins=ReadSetOrigins((odd, *[{ORGANISM_TAG: f"organism {i} " + "y" * 40} for i in range(19)]), 10),
    )
    decision = quality_gate(
        GateFigures(candidate=3.7),
        serving_model_data_url=None,
        warm_start_model_data_url=None,
        margin=0.0,
        forgetting_tolerance=0.02,
    )

    metadata = package_metadata("hyenaflow-1", decision, lineage)

    validate_customer_metadata(metadata)  # the emulation's check of botocore's constraints
    assert metadata["Organisms"].startswith(
        "Influenza A virus  A/Puerto Rico/8/1934 H1N1 / Salmonella enterica  subsp. I / organism 0"
    )
    assert metadata["Organisms"].endswith("more +10 read sets not looked up")
