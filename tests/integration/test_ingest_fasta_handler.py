"""ingest_fasta end to end against a real moto server (S3, DynamoDB, SNS->SQS) over HTTP.

Only HealthOmics is faked (tests/support/lambda_env.FakeOmicsImports, at the botocore HTTP
layer of the real omics client). Events are events/s3_object_created_incoming.json.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.lambda_env import (
    FASTA_FIXTURES,
    SEQUENCE_STORE_ID,
    FakeOmicsImports,
    LambdaContext,
    MotoStack,
    fresh_lambda_module,
    load_event,
    moto_stack,
)

ROLE_ARN = "arn:aws:iam::111122223333:role/hyenaflow-omics-import"
FLAT_FILE_FIXTURES = FASTA_FIXTURES.parent / "flatfiles"


@pytest.fixture(scope="module")
def stack() -> Iterator[MotoStack]:
    with moto_stack() as running:
        os.environ.update(
            {
                "DATA_BUCKET": running.bucket,
                "STATE_TABLE": running.table,
                "ALERT_TOPIC_ARN": running.topic_arn,
                "SEQUENCE_STORE_ID": SEQUENCE_STORE_ID,
                "OMICS_IMPORT_ROLE_ARN": ROLE_ARN,
                "MAX_INPUT_BYTES": str(1024 * 1024),
                "POWERTOOLS_SERVICE_NAME": "ingest_fasta",
                "POWERTOOLS_METRICS_NAMESPACE": "hyenaflow",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "AWS_LAMBDA_FUNCTION_NAME": "hyenaflow-ingest-fasta",
            }
        )
        yield running


@pytest.fixture
def handler(stack: MotoStack) -> Any:
    return fresh_lambda_module("ingest_fasta.handler")


@pytest.fixture
def omics(handler: Any) -> FakeOmicsImports:
    from pipeline.aws_clients import client

    return FakeOmicsImports().attach(client("omics"))


def upload(stack: MotoStack, key: str, data: bytes) -> dict[str, Any]:
    """Put the object and build the EventBridge event S3 would send for it."""
    response = stack.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=data)
    return load_event(
        "s3_object_created_incoming.json",
        bucket=stack.bucket,
        key=key,
        size=len(data),
        etag=response["ETag"].strip('"'),
    )


def invoke(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    return handler.lambda_handler(event, LambdaContext("hyenaflow-ingest-fasta"))


def read_staged_fastq(stack: MotoStack, uri: str) -> bytes:
    key = uri.split(f"s3://{stack.bucket}/", 1)[1]
    return gzip.decompress(stack.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read())


def rejoin_fastq(fastq: bytes) -> dict[str, bytes]:
    from tests.support.fastq_tiles import parse_tile_name

    lines = fastq.split(b"\n")
    records: dict[str, bytearray] = {}
    for i in range(0, len(lines) - 1, 4):
        record_id, start, end = parse_tile_name(lines[i][1:].decode())
        joined = records.setdefault(record_id, bytearray())
        assert start == len(joined) and end - start == len(lines[i + 1])
        joined += lines[i + 1]
    return {k: bytes(v) for k, v in records.items()}


def test_sample_event_is_a_real_s3_eventbridge_object_created_event():
    event = load_event("s3_object_created_incoming.json")
    from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

    assert S3EventNotificationEventBridgeModel.model_validate(event).detail_type == "Object Created"
    from ingest_fasta.models import ObjectCreatedEvent

    parsed = ObjectCreatedEvent.model_validate(event)  # the handler's own model
    assert parsed.detail_type == "Object Created" and parsed.source == "aws.s3"
    data = (FASTA_FIXTURES / parsed.detail.object.key.rsplit("/", 1)[1]).read_bytes()
    assert parsed.detail.object.etag == hashlib.md5(data).hexdigest() and parsed.detail.object.size == len(
        data
    )


def test_uploaded_fasta_becomes_staged_fastq_tiles_and_one_import_job(stack, handler, omics):
    data = (FASTA_FIXTURES / "lambda_phage_NC_001416.fa").read_bytes()  # real genome, CRLF lines
    event = upload(stack, "incoming/lambda_phage_NC_001416.fa", data)

    result = invoke(handler, event)

    assert result["status"] == "imported" and result["records"] == 1 and result["bases"] == 48_502
    [request] = omics.requests
    assert request["_path"] == f"sequencestore/{SEQUENCE_STORE_ID}/importjob"
    assert request["roleArn"] == ROLE_ARN and len(request["clientToken"]) == 64
    [source] = request["sources"]
    assert source["sourceFileType"] == "FASTQ"
    assert source["sampleId"] == source["subjectId"] == "lambda_phage_NC_001416"
    assert source["sourceFiles"]["source1"] == result["stagedObjects"][0]
    assert source["sourceFiles"]["source1"].startswith(f"s3://{stack.bucket}/staged/lambda_phage_NC_001416/")
    header, _, sequence = data.partition(b"\n")
    record_id = header[1:].split()[0].decode()
    expected = sequence.replace(b"\r", b"").replace(b"\n", b"").upper()
    assert rejoin_fastq(read_staged_fastq(stack, source["sourceFiles"]["source1"])) == {record_id: expected}
    assert stack.keys("incoming/lambda_phage") == ["incoming/lambda_phage_NC_001416.fa"]  # input stays


def test_gzipped_fasta_is_inflated_and_imported(stack, handler, omics):
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa.gz").read_bytes()
    result = invoke(handler, upload(stack, "incoming/phix/phix174_NC_001422.fa.gz", data))
    assert result["status"] == "imported" and result["bases"] == 5_386
    assert omics.requests[0]["sources"][0]["sampleId"] == "phix174_NC_001422"
    assert result["stagedObjects"][0].startswith(f"s3://{stack.bucket}/staged/phix/phix174_NC_001422/")


def test_genbank_file_carries_its_accession(stack, handler, omics):
    data = b">NC_001422.1 Escherichia phage phiX174, complete genome\nGAGTTTTATCGCTTCCATGAC\n"
    result = invoke(handler, upload(stack, "incoming/genbank/NC_001422.1.fa", data))
    assert result["status"] == "imported"
    source = omics.requests[0]["sources"][0]
    assert source["sampleId"] == "NC_001422.1" and source["tags"]["hyenaflow:accession"] == "NC_001422.1"


@pytest.mark.parametrize("fixture", ["phix174_windows_bom.fa", "phix174_classic_mac.fa"])
def test_windows_bom_and_classic_mac_line_ends_are_imported_like_the_plain_file(
    stack, handler, omics, fixture
):
    plain = (FASTA_FIXTURES / "phix174_NC_001422.fa").read_bytes()
    expected = {"1": b"".join(plain.split(b"\n")[1:]).replace(b"\r", b"").upper()}

    result = invoke(handler, upload(stack, f"incoming/{fixture}", (FASTA_FIXTURES / fixture).read_bytes()))

    assert result["status"] == "imported" and (result["records"], result["bases"]) == (1, 5_386)
    assert rejoin_fastq(read_staged_fastq(stack, result["stagedObjects"][0])) == expected


@pytest.mark.parametrize(
    ("fixture", "compress", "record_id", "molecule_type"),
    [("NC_005816.gb", False, "NC_005816.1", "DNA"), ("AE017046.embl", True, "AE017046.1", "genomic DNA")],
)
def test_genbank_and_embl_flat_files_are_imported_with_organism_taxon_and_molecule_type(
    stack, handler, omics, fixture, compress, record_id, molecule_type
):
    data = (FLAT_FILE_FIXTURES / fixture).read_bytes()
    key = f"incoming/flat/{fixture}" + (".gz" if compress else "")

    result = invoke(handler, upload(stack, key, gzip.compress(data) if compress else data))

    assert result["status"] == "imported" and (result["records"], result["bases"]) == (1, 9_609)
    assert result["format"] == ("GenBank" if fixture.endswith(".gb") else "EMBL")
    lines = data.split(b"\n")
    block = next(i for i, line in enumerate(lines) if line.startswith((b"ORIGIN", b"SQ   ")))
    letters = bytes(c for line in lines[block + 1 : -2] for c in line if chr(c).isalpha()).upper()
    assert lines[-2] == b"//" and len(letters) == 9_609
    assert rejoin_fastq(read_staged_fastq(stack, result["stagedObjects"][0])) == {record_id: letters}
    [source] = omics.requests[0]["sources"]
    assert source["sampleId"] == fixture.split(".")[0]
    assert source["tags"]["hyenaflow:organism"] == "Yersinia pestis biovar Microtus str. 91001"
    assert source["tags"]["hyenaflow:taxonomy-id"] == "229193"
    assert source["tags"]["hyenaflow:molecule-type"] == molecule_type
    assert "organism Yersinia pestis biovar Microtus str. 91001 (taxon 229193)" in source["description"]


def test_soft_masked_and_iupac_sequences_are_accepted_as_acgtn(stack, handler, omics):
    data = (FASTA_FIXTURES / "soft_masked_iupac.fa").read_bytes()
    result = invoke(handler, upload(stack, "incoming/soft_masked_iupac.fa", data))
    assert result["status"] == "imported"
    staged = read_staged_fastq(stack, result["stagedObjects"][0])
    assert rejoin_fastq(staged) == {"masked": b"ACGTACGTNN" + b"N" * 11}


def test_replayed_and_duplicate_events_start_one_import_only(stack, handler, omics):
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa").read_bytes()
    event = upload(stack, "incoming/replayed.fa", data)
    duplicate = json.loads(json.dumps(event))
    duplicate["id"] = "another-delivery-of-the-same-object"  # EventBridge at-least-once delivery

    first = invoke(handler, event)
    replayed = invoke(handler, event)
    delivered_twice = invoke(handler, duplicate)

    assert first["status"] == "imported"
    assert replayed == first and delivered_twice == first
    assert len(omics.requests) == 1 and omics.jobs_started == 1


def test_import_throttling_is_retried_with_backoff_until_it_succeeds(stack, handler, omics):
    omics.throttle_first = 2
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa").read_bytes()
    result = invoke(handler, upload(stack, "incoming/throttled.fa", data))
    assert result["status"] == "imported"
    assert len(omics.requests) == 3 and omics.jobs_started == 1
    assert omics.requests[0]["clientToken"] == omics.requests[2]["clientToken"]


def test_import_calls_of_one_instance_are_spaced_to_its_share_of_omics_tps(stack, monkeypatch):
    from pipeline.aws_clients import client

    # Given 2 calls/s for the function, shared by its (reserved) 2 instances: 1 call/s each
    monkeypatch.setenv("OMICS_TPS", "2")
    monkeypatch.setenv("MAX_CONCURRENCY", "2")
    handler = fresh_lambda_module("ingest_fasta.handler")
    omics = FakeOmicsImports().attach(client("omics"))
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa").read_bytes()

    # When this instance ingests three small files back to back
    for n in range(3):
        assert invoke(handler, upload(stack, f"incoming/spaced/{n}.fa", data))["status"] == "imported"

    # Then its StartReadSetImportJob calls are at least a second apart (4 instances could not pass 2/s)
    starts = [request["_at"] for request in omics.requests]
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 3 and min(gaps) >= 1.0 - 0.02


REJECTED_CASES = [
    ("empty.fa", None, "the file is empty"),
    ("not_fasta.fasta", 1, "expected a FASTA header starting with '>'"),
    ("protein.fa", 2, "looks like a protein sequence"),
    ("binary.fa", 1, "binary data (a PNG image)"),
    ("truncated.fa.gz", None, "gzip stream is truncated"),
    ("record_without_sequence.fa", 3, "record 'seq2' has no sequence"),
    ("duplicate_ids.fa", 6, "record id 'chr1' appears twice"),
    ("truncated.gb", 400, "record 'NC_005816.1' ends without its '//' line"),
    ("bad_base.embl", 331, "'X' (base 125) of record 'AE017046.1' is not a nucleotide"),
    ("contig_only.gb", 1, "record 'NC_005816.1' has no sequence"),
]


@pytest.mark.parametrize(("fixture", "line", "problem"), REJECTED_CASES, ids=[c[0] for c in REJECTED_CASES])
def test_bad_input_is_moved_to_rejected_with_a_precise_reason_and_an_alert(
    stack, handler, omics, fixture, line, problem
):
    key = f"incoming/bad/{fixture}"
    folder = FLAT_FILE_FIXTURES if fixture.endswith((".gb", ".embl")) else FASTA_FIXTURES
    data = (folder / fixture).read_bytes()
    stack.alerts(wait_seconds=0)  # drain

    result = invoke(handler, upload(stack, key, data))

    assert result["status"] == "rejected"
    assert stack.keys(key) == []
    moved = stack.client("s3").get_object(Bucket=stack.bucket, Key=f"rejected/bad/{fixture}")["Body"].read()
    assert moved == data
    reason = json.loads(
        stack.client("s3")
        .get_object(Bucket=stack.bucket, Key=f"rejected/bad/{fixture}.reason.json")["Body"]
        .read()
    )
    assert problem in reason["problem"] and reason["line"] == line and reason["action"]
    assert (
        reason["message"].startswith(f"{key}: ") and f"moved to rejected/bad/{fixture}" in reason["message"]
    )
    assert stack.keys(f"staged/bad/{fixture.split('.')[0]}") == [] and stack.open_multipart_uploads() == []
    assert omics.requests == []
    [alert] = stack.alerts()
    assert (
        alert["subject"] == f"hyenaflow: rejected bad/{fixture}"
        and alert["details"]["problem"] == reason["problem"]
    )


def test_file_over_max_input_bytes_is_rejected_without_reading_it(stack, handler, omics):
    data = b">big\n" + b"ACGT" * 300_000  # 1.2 MB > MAX_INPUT_BYTES of this module (1 MiB)
    result = invoke(handler, upload(stack, "incoming/big.fa", data))
    assert result["status"] == "rejected" and "MAX_INPUT_BYTES" in result["message"]
    assert stack.keys("rejected/big.fa") == ["rejected/big.fa", "rejected/big.fa.reason.json"]
    assert omics.requests == []


def test_non_fasta_file_name_is_rejected(stack, handler, omics):
    result = invoke(handler, upload(stack, "incoming/notes.txt", b">a\nACGT\n"))
    assert result["status"] == "rejected" and ".fa, .fasta or .fna (FASTA) or .gb" in result["message"]
    assert stack.keys("rejected/notes.txt") == ["rejected/notes.txt", "rejected/notes.txt.reason.json"]


def test_event_for_an_object_that_is_already_gone_is_skipped(stack, handler, omics):
    event = upload(stack, "incoming/gone.fa", b">a\nACGT\n")
    stack.client("s3").delete_object(Bucket=stack.bucket, Key="incoming/gone.fa")
    assert invoke(handler, event)["status"] == "skipped"
    assert omics.requests == []


def long_key(prefix: str, total_chars: int, tail: str = "") -> str:
    """incoming/<folders>/<name>.fa of exactly `total_chars` characters."""
    folders = "".join(f"sequencing-run-{n:02d}-with-a-descriptive-folder-name/" for n in range(10))
    head = f"{prefix}{folders}sample-"
    return head + "x" * (total_chars - len(head) - len(tail) - len(".fa")) + tail + ".fa"


def test_a_key_of_over_a_thousand_characters_is_imported_under_names_healthomics_accepts(
    stack, handler, omics
):
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa").read_bytes()
    key = long_key("incoming/", 1020)
    assert len(key) == 1020  # S3 allows 1,024; the staged key would repeat the file name twice

    result = invoke(handler, upload(stack, key, data))

    assert result["status"] == "imported"  # the fake answers ValidationException as HealthOmics would
    [request] = omics.requests
    [source] = request["sources"]
    staged_key = source["sourceFiles"]["source1"].removeprefix(f"s3://{stack.bucket}/")
    assert len(staged_key.encode()) <= 1024 and staged_key.startswith("staged/sequencing-run-00-")
    assert staged_key.endswith(".001.fastq.gz") and stack.keys(staged_key) == [staged_key]
    assert len(source["sampleId"]) == len(source["subjectId"]) == len(source["name"]) == 127
    assert source["sampleId"].startswith("sample-xxx")
    header, _, sequence = data.partition(b"\n")
    record_id = header[1:].split()[0].decode()
    expected = sequence.replace(b"\r", b"").replace(b"\n", b"").upper()
    assert rejoin_fastq(read_staged_fastq(stack, source["sourceFiles"]["source1"])) == {record_id: expected}


def test_long_keys_that_differ_only_past_what_fits_get_different_staged_keys_and_sample_ids(
    stack, handler, omics
):
    data = b">a\nACGTACGT\n"
    first = invoke(handler, upload(stack, long_key("incoming/", 1010, tail="-1"), data))
    second = invoke(handler, upload(stack, long_key("incoming/", 1010, tail="-2"), data))

    assert first["stagedObjects"] != second["stagedObjects"]
    first_source, second_source = (request["sources"][0] for request in omics.requests)
    assert first_source["sampleId"] != second_source["sampleId"]
    assert first_source["name"] != second_source["name"]


def test_a_rejected_file_with_a_long_key_gets_its_reason_file_within_the_key_limit(stack, handler, omics):
    key = long_key("incoming/bad/", 1024)
    data = (FASTA_FIXTURES / "protein.fa").read_bytes()

    result = invoke(handler, upload(stack, key, data))

    assert result["status"] == "rejected" and stack.keys(key) == []
    moved = "rejected/" + key.removeprefix("incoming/")
    [reason_key] = [k for k in stack.keys("rejected/bad/sequencing-run-00-") if k.endswith(".reason.json")]
    assert len(reason_key.encode()) <= 1024 and reason_key.startswith(moved[:900])
    reason = json.loads(stack.client("s3").get_object(Bucket=stack.bucket, Key=reason_key)["Body"].read())
    assert reason["movedTo"] == f"s3://{stack.bucket}/{moved}" and "protein" in reason["problem"]
    assert all(len(k.encode()) <= 1024 for k in stack.keys())
