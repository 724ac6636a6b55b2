"""Names that ingest_fasta derives from an upload: stems, client tokens, settings validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.uploaded_fasta import UploadedObject, fasta_stem, import_client_token


@pytest.mark.parametrize(
    ("key", "stem"),
    [
        ("incoming/lambda.fa", "lambda"),
        ("incoming/sub/dir/NC_001416.1.fasta", "NC_001416.1"),
        ("incoming/genbank/OQ100001.1.fa", "OQ100001.1"),
        ("incoming/x.FNA.GZ", "x"),
        ("incoming/reads.fa.gz", "reads"),
        ("incoming/notes.txt", None),
        ("incoming/.fa", None),
        ("incoming/archive.fa.zip", None),
    ],
)
def test_only_fasta_extensions_give_a_stem(key, stem):
    assert fasta_stem(key) == stem


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
