"""Names that ingest_fasta derives from an upload: stem and format, client tokens, staged keys,
read-set description and tags within HealthOmics' limits, settings validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.ingest.fasta_stream import SequenceSummary
from pipeline.ingest.read_set_names import read_set_field, reason_key, staged_key_prefix
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


ETAG = "0123456789abcdef0123456789abcdef"
SOURCE_SUFFIX = ".001.fastq.gz"  # what StagedFastqUpload appends


def test_ordinary_keys_keep_the_readable_staged_layout():
    assert staged_key_prefix("staged/", "sub/dir/NC_001416.1.fa", "NC_001416.1", ETAG) == (
        f"staged/sub/dir/NC_001416.1/{ETAG}/NC_001416.1"
    )


@pytest.mark.parametrize("relative", ["d/" * 300 + "n" * 400 + ".fa", "é" * 500 + ".fa", "x" * 1012 + ".fa"])
def test_a_long_key_is_shortened_to_fit_s3_and_the_healthomics_uri_pattern(relative):
    stem = relative.rsplit("/", 1)[-1].removesuffix(".fa")

    prefix = staged_key_prefix("staged/", relative, stem, f"{ETAG}-12")

    assert len((prefix + SOURCE_SUFFIX).encode()) <= 1024  # bytes bound characters too
    assert prefix == staged_key_prefix(
        "staged/", relative, stem, f"{ETAG}-12"
    )  # a retry stages the same keys
    assert prefix.startswith("staged/" + relative[:20]) and f"/{ETAG}-12/" in prefix


def test_two_long_keys_never_share_a_staged_key():
    first, second = "a" * 1000 + "1.fa", "a" * 1000 + "2.fa"
    assert staged_key_prefix("staged/", first, first[:-3], ETAG) != staged_key_prefix(
        "staged/", second, second[:-3], ETAG
    )


def test_characters_the_uri_pattern_refuses_never_reach_a_staged_key():
    relative = "run\u2028one/line\nbreak.fa"
    prefix = staged_key_prefix("staged/", relative, "line\nbreak", ETAG)
    assert not any(char in prefix for char in "\n\r\x85\u2028\u2029")
    assert prefix != staged_key_prefix("staged/", "run_one/line_break.fa", "line_break", ETAG)


def test_the_reason_file_of_a_long_rejected_key_stays_within_the_key_limit():
    assert reason_key("rejected/x.fa") == "rejected/x.fa.reason.json"
    long = "rejected/" + "y" * 1010 + ".fa"
    assert len(reason_key(long).encode()) <= 1024 and reason_key(long).endswith(".reason.json")
    assert reason_key(long) != reason_key(long[:-4] + "z.fa")


@pytest.mark.parametrize(
    ("text", "limit"), [("s" * 200, 127), ("d" * 300, 255), ("tab\there", 127), ("", 127)]
)
def test_read_set_fields_are_shortened_deterministically_within_their_limits(text, limit):
    field = read_set_field(text, limit)
    assert 1 <= len(field) <= limit and field == read_set_field(text, limit)
    assert all(char.isprintable() for char in field)


def test_long_names_sharing_their_first_127_characters_stay_distinct():
    assert read_set_field("s" * 200 + "1") != read_set_field("s" * 200 + "2")
    assert read_set_field("NC_001416.1") == "NC_001416.1"
