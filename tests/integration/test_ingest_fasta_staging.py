"""Staging of FASTQ.gz tiles in (moto) S3: multipart uploads, split into sources, clean abort."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator

import pytest

from pipeline.aws_clients import client
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.staging import StagedFastqUpload, TooManySources
from pipeline.ingest.uploaded_fasta import UploadedObject, ingest_uploaded_fasta
from tests.support.lambda_env import reset_lambda_clients
from tests.support.local_stack import LocalStack, local_stack

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(tmp_path_factory.mktemp("aws")) as running:
        reset_lambda_clients()
        yield running


@pytest.fixture(scope="module")
def big_fasta() -> bytes:
    """~9 MB, 3 records: enough for several 4 MiB FASTQ blocks and an 8 MiB-threshold S3 part."""
    rng = random.Random(11)
    unit = bytes(rng.choice(b"ACGT") for _ in range(1 << 16))
    records = []
    for n in range(3):
        seq = unit * 45
        records.append(
            b">contig%d\n" % n + b"\n".join(seq[i : i + 80] for i in range(0, len(seq), 80)) + b"\n"
        )
    return b"".join(records)


def settings_for(stack: LocalStack, **overrides) -> IngestSettings:
    return IngestSettings(
        state_table=stack.table,
        data_bucket=stack.bucket,
        alert_topic_arn=stack.topic_arn,
        sequence_store_id=stack.sequence_store_id,
        omics_import_role_arn="arn:aws:iam::111122223333:role/import",
        **overrides,
    )


def put(stack: LocalStack, key: str, data: bytes) -> UploadedObject:
    etag = client("s3").put_object(Bucket=stack.bucket, Key=key, Body=data)["ETag"].strip('"')
    return UploadedObject(stack.bucket, key, etag, len(data))


def test_large_file_is_split_over_several_sources_of_one_import_job(stack, big_fasta):
    uploaded = put(stack, "incoming/big/assembly.fna", big_fasta)

    result = ingest_uploaded_fasta(
        uploaded,
        s3=client("s3"),
        omics=client("omics"),
        settings=settings_for(stack, max_source_bytes=1),
        alert=print,
    )

    assert result["status"] == "imported"
    job = stack.wait_for_import(result["importJobId"])  # one job ...
    assert job["status"] == "COMPLETED"
    sources = job["sources"]
    assert len(sources) == len(result["stagedObjects"]) >= 3  # ... with several read-set sources
    assert len({source["readSetId"] for source in sources}) == len(sources)  # one read set each
    assert [s["name"] for s in sources][:2] == [
        f"assembly part 1 of {len(sources)}",
        f"assembly part 2 of {len(sources)}",
    ]
    s3 = client("s3")
    fastq = b""
    for source in sources:
        key = source["sourceFiles"]["source1"].split(f"{stack.bucket}/", 1)[1]
        part = gzip.decompress(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())
        assert part.startswith(b"@contig") and part.endswith(b"\n") and part.count(b"\n") % 4 == 0
        fastq += part
    expected = {f"contig{n}": b"".join(big_fasta.split(b">")[n + 1].split(b"\n")[1:]) for n in range(3)}
    rejoined: dict[str, bytes] = {}
    lines = fastq.split(b"\n")
    for i in range(0, len(lines) - 1, 4):
        record_id = lines[i][1:].decode().rsplit(":", 1)[0]
        rejoined[record_id] = rejoined.get(record_id, b"") + lines[i + 1]
    assert rejoined == expected


@pytest.mark.parametrize("max_source_bytes", [1, 1 << 40], ids=["completed-sources", "open-multipart-upload"])
def test_problem_found_late_removes_everything_already_staged(stack, big_fasta, max_source_bytes):
    imports = len(stack.import_jobs())
    data = big_fasta + b">late\nACGT\nACGTJ\n"
    uploaded = put(stack, f"incoming/late/bad-{max_source_bytes}.fa", data)

    result = ingest_uploaded_fasta(
        uploaded,
        s3=client("s3"),
        omics=client("omics"),
        settings=settings_for(stack, max_source_bytes=max_source_bytes),
        alert=print,
    )

    last_line = data.count(b"\n")
    assert result["status"] == "rejected" and f"line {last_line}: 'J'" in result["message"]
    assert stack.keys("staged/late/") == [] and stack.open_multipart_uploads() == []
    assert stack.keys(f"rejected/late/bad-{max_source_bytes}.fa") == [
        f"rejected/late/bad-{max_source_bytes}.fa",
        f"rejected/late/bad-{max_source_bytes}.fa.reason.json",
    ]
    assert len(stack.import_jobs()) == imports


def test_more_sources_than_one_import_job_takes_is_refused_and_cleaned_up(stack):
    upload = StagedFastqUpload(
        client("s3"), stack.bucket, "staged/toomany/x", max_object_bytes=1, max_objects=2
    )
    read = b"@r:0-4\nACGT\n+\nIIII\n"
    block = read * (4 * MIB // len(read) + 1)  # one gzip member per write
    with pytest.raises(TooManySources, match="more than 2 staged FASTQ sources"):
        for _ in range(4):
            upload.write(block)
        upload.close()
    upload.abort()
    assert stack.keys("staged/toomany/") == [] and stack.open_multipart_uploads() == []
