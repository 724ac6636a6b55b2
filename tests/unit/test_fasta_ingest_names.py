"""Names that ingest_fasta derives from an upload: stem and format, client tokens, read-set
description and tags, settings validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.ingest.fasta_stream import SequenceSummary
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.uploaded_fasta import (
    UploadedObject,
    import_client_token,
    read_set_description,
    read_set_tags,
    stem_and_format,
)


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ("incoming/lambda.fa", ("lambda", "fasta")),
        ("incoming/sub/dir/NC_001416.1.fasta", ("NC_001416.1", "fasta")),
        ("incoming/genbank/OQ100001.1.fa", ("OQ100001.1", "fasta")),
        ("incoming/x.FNA.GZ", ("x", "fasta")),
        ("incoming/reads.fa.gz", ("reads", "fasta")),
        ("incoming/NC_005816.gb", ("NC_005816", "genbank")),
        ("incoming/chloroplast.GBK.gz", ("chloroplast", "genbank")),
        ("incoming/assembly.gbff", ("assembly", "genbank")),
        ("incoming/AE017046.embl.gz", ("AE017046", "embl")),
        ("incoming/reads.fastq.gz", None),
        ("incoming/notes.txt", None),
        ("incoming/.fa", None),
        ("incoming/.gb", None),
        ("incoming/archive.fa.zip", None),
    ],
)
def test_fasta_and_flat_file_extensions_give_a_stem_and_the_parser(key, named):
    assert stem_and_format(key) == named


def test_read_set_description_and_tags_carry_what_flat_file_records_say_within_the_api_limits():
    summary = SequenceSummary(
        records=2,
        bases=19_218,
        lines=1058,
        first_record_id="NC_005816.1",
        file_format="GenBank",
        organisms=("Yersinia pestis biovar Microtus str. 91001", "x" * 300),
        taxonomy_ids=("229193",),
        molecule_types=("DNA",),
    )
    description, tags = read_set_description(summary), read_set_tags(summary)
    assert description.startswith(
        "2 GenBank records, 19218 bases, first NC_005816.1; organism Yersinia pestis biovar Microtus"
    )
    assert len(description) == 255  # ReadSetDescription: 1-255
    assert tags["hyenaflow:format"] == "GenBank" and tags["hyenaflow:taxonomy-id"] == "229193"
    assert tags["hyenaflow:molecule-type"] == "DNA" and len(tags["hyenaflow:organism"]) == 256  # TagValue max
    plain = read_set_tags(SequenceSummary(1, 4, 2, "a"))
    assert plain == {"hyenaflow:format": "FASTA"}


def test_client_token_is_stable_per_object_version_and_fits_the_api():
    first = UploadedObject("bucket", "incoming/a.fa", "etag-1")
    assert import_client_token(first) == import_client_token(
        UploadedObject("bucket", "incoming/a.fa", "etag-1")
    )
    assert import_client_token(first) != import_client_token(
        UploadedObject("bucket", "incoming/a.fa", "etag-2")
    )
    assert 1 <= len(import_client_token(first)) <= 127  # StartReadSetImportJob clientToken length


def test_settings_refuse_a_malformed_sequence_store_id():
    with pytest.raises(ValidationError, match="sequence_store_id"):
        IngestSettings(
            data_bucket="bucket",
            state_table="state",
            alert_topic_arn="arn:aws:sns:us-east-1:1:t",
            sequence_store_id="store-1",
            omics_import_role_arn="arn:aws:iam::1:role/r",
        )
