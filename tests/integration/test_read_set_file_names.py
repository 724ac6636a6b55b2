"""Training finds read-set files however HealthOmics names them (issue 13.3).

The names read-set files get at the sequence store's S3 access point are not documented. The
HealthOmics emulation here stores them under the names GetReadSetMetadata reports, and can name
them after their slot (`source1`, no extension), so this test reads a read set the way the
training job does (the store's s3Uri as an s3:// prefix, over HTTP) without any name to go by.
With name-based selection (only *.fa/*.fq files), it finds nothing.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hyenadna import encode_dna
from hyenaflow.local import AwsServer, start_aws_server, wait_for
from sequence_data import load_records
from tests.support.fastq_tiles import records_to_fastq

REPO = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/omics-import"


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsServer]:
    with start_aws_server(tmp_path_factory.mktemp("aws"), read_set_file_names="source") as local:
        saved = dict(os.environ)
        os.environ.update(local.env())
        try:
            yield local
        finally:
            os.environ.clear()
            os.environ.update(saved)


def imported_read_set(aws: AwsServer, fastq_gz: bytes, tags: dict[str, str]) -> tuple[dict[str, Any], str]:
    """(sequence store, read set id) after a real import of `fastq_gz` through the emulation."""
    s3, omics = aws.client("s3"), aws.client("omics")
    s3.create_bucket(Bucket="staging")
    s3.put_object(Bucket="staging", Key="staged/phix/phix.001.fastq.gz", Body=fastq_gz)
    store = omics.get_sequence_store(id=omics.create_sequence_store(name="names")["id"])
    job = omics.start_read_set_import_job(
        sequenceStoreId=store["id"],
        roleArn=ROLE,
        sources=[
            {
                "sourceFiles": {"source1": "s3://staging/staged/phix/phix.001.fastq.gz"},
                "sourceFileType": "FASTQ",
                "subjectId": "phix",
                "sampleId": "phix",
                "tags": tags,
            }
        ],
    )
    done = wait_for(
        lambda: omics.get_read_set_import_job(sequenceStoreId=store["id"], id=job["id"]),
        "the import job",
        30,
        until=lambda r: r["status"] not in ("SUBMITTED", "IN_PROGRESS"),
    )
    assert done["status"] == "COMPLETED", done
    return store, done["sources"][0]["readSetId"]


def test_training_reads_a_read_set_whose_file_name_says_nothing_about_its_format(aws):
    header, *lines = (REPO / "data" / "phix174_NC_001422.fa").read_bytes().splitlines()
    record_id, bases = header[1:].split()[0].decode(), b"".join(lines).upper()
    fastq_gz = gzip.compress(b"".join(records_to_fastq([(record_id, bases)], tile_len=1000)))
    store, read_set_id = imported_read_set(aws, fastq_gz, {"hyenaflow:organism": "Escherichia phage phiX174"})
    omics = aws.client("omics")

    uri = omics.get_read_set_metadata(sequenceStoreId=store["id"], id=read_set_id)["files"]["source1"][
        "s3Access"
    ]["s3Uri"]
    assert uri == f"{store['s3Access']['s3Uri']}readSet/{read_set_id}/source1"  # no extension to go by

    (record,) = load_records(store["s3Access"]["s3Uri"])  # what the training channel points at

    assert record.record_id == record_id and record.source.startswith(uri)
    np.testing.assert_array_equal(record.tokens, encode_dna(bases))
    read_set_arn = omics.get_read_set_metadata(sequenceStoreId=store["id"], id=read_set_id)["arn"]
    assert omics.list_tags_for_resource(resourceArn=read_set_arn)["tags"] == {
        "hyenaflow:organism": "Escherichia phage phiX174"
    }
