"""ingest_fasta end to end on the local AWS server (S3, DynamoDB, SNS->SQS and the HealthOmics
emulation) over HTTP: what HealthOmics records is what the tests read. Events are
events/s3_object_created_incoming.json.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from hyenaflow.local.template import load_template
from tests.support.lambda_env import (
    FASTA_FIXTURES,
    REPO,
    LambdaContext,
    fresh_lambda_module,
    load_event,
)
from tests.support.local_stack import LocalStack, local_stack
from tests.support.virtual_clock import VirtualClock, rate_limiters_on, record_requests

ROLE_ARN = "arn:aws:iam::123456789012:role/hyenaflow-omics-import"
FLAT_FILE_FIXTURES = FASTA_FIXTURES.parent / "flatfiles"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(tmp_path_factory.mktemp("aws")) as running:
        os.environ.update(
            {
                "DATA_BUCKET": running.bucket,
                "STATE_TABLE": running.table,
                "ALERT_TOPIC_ARN": running.topic_arn,
                "SEQUENCE_STORE_ID": running.sequence_store_id,
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
def handler(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Any:
    # OMICS_TPS at its default: the limiter spaces this instance's calls on a virtual clock.
    rate_limiters_on(VirtualClock(), monkeypatch)
    return fresh_lambda_module("ingest_fasta.handler")


def import_job(stack: LocalStack, result: dict[str, Any]) -> dict[str, Any]:
    """The import job an ingest started, as HealthOmics reports it once it ended."""
    return stack.wait_for_import(result["importJobId"])


def import_jobs_of(stack: LocalStack, result: dict[str, Any]) -> list[str]:
    """The ids of every import job of the store whose sources are the staged objects of `result`."""
    staged = set(result["stagedObjects"])
    return [
        job["id"]
        for job in (stack.import_job(j["id"]) for j in stack.import_jobs())
        if {source["sourceFiles"]["source1"] for source in job["sources"]} & staged
    ]


def upload(stack: LocalStack, key: str, data: bytes) -> dict[str, Any]:
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


def read_staged_fastq(stack: LocalStack, uri: str) -> bytes:
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


def test_uploaded_fasta_becomes_staged_fastq_tiles_and_one_import_job(stack, handler):
    data = (FASTA_FIXTURES / "lambda_phage_NC_001416.fa").read_bytes()  # real genome, CRLF lines
    event = upload(stack, "incoming/lambda_phage_NC_001416.fa", data)

    result = invoke(handler, event)

    assert result["status"] == "imported" and result["records"] == 1 and result["bases"] == 48_502
    job = import_job(stack, result)
    assert job["status"] == "COMPLETED" and job["roleArn"] == ROLE_ARN
    assert import_jobs_of(stack, result) == [job["id"]]
    [source] = job["sources"]
    assert source["sourceFileType"] == "FASTQ" and source["status"] == "FINISHED"
    assert source["sampleId"] == source["subjectId"] == "lambda_phage_NC_001416"
    assert source["sourceFiles"]["source1"] == result["stagedObjects"][0]
    assert source["sourceFiles"]["source1"].startswith(f"s3://{stack.bucket}/staged/lambda_phage_NC_001416/")
    header, _, sequence = data.partition(b"\n")
    record_id = header[1:].split()[0].decode()
    expected = sequence.replace(b"\r", b"").replace(b"\n", b"").upper()
    assert rejoin_fastq(read_staged_fastq(stack, source["sourceFiles"]["source1"])) == {record_id: expected}
    read_set = stack.client("omics").get_read_set_metadata(
        sequenceStoreId=stack.sequence_store_id, id=source["readSetId"]
    )
    assert read_set["sequenceInformation"]["totalBaseCount"] == 48_502
    assert stack.keys("incoming/lambda_phage") == ["incoming/lambda_phage_NC_001416.fa"]  # input stays


def test_gzipped_fasta_is_inflated_and_imported(stack, handler):
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa.gz").read_bytes()
    result = invoke(handler, upload(stack, "incoming/phix/phix174_NC_001422.fa.gz", data))
    assert result["status"] == "imported" and result["bases"] == 5_386
    assert import_job(stack, result)["sources"][0]["sampleId"] == "phix174_NC_001422"
    assert result["stagedObjects"][0].startswith(f"s3://{stack.bucket}/staged/phix/phix174_NC_001422/")


def test_genbank_file_carries_its_accession(stack, handler):
    data = b">NC_001422.1 Escherichia phage phiX174, complete genome\nGAGTTTTATCGCTTCCATGAC\n"
    result = invoke(handler, upload(stack, "incoming/genbank/NC_001422.1.fa", data))
    assert result["status"] == "imported"
    source = import_job(stack, result)["sources"][0]
    assert source["sampleId"] == "NC_001422.1" and source["tags"]["hyenaflow:accession"] == "NC_001422.1"


@pytest.mark.parametrize("fixture", ["phix174_windows_bom.fa", "phix174_classic_mac.fa"])
def test_windows_bom_and_classic_mac_line_ends_are_imported_like_the_plain_file(stack, handler, fixture):
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
    stack, handler, fixture, compress, record_id, molecule_type
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
    [source] = import_job(stack, result)["sources"]
    assert source["sampleId"] == fixture.split(".")[0]
    assert source["tags"]["hyenaflow:organism"] == "Yersinia pestis biovar Microtus str. 91001"
    assert source["tags"]["hyenaflow:taxonomy-id"] == "229193"
    assert source["tags"]["hyenaflow:molecule-type"] == molecule_type
    assert "organism Yersinia pestis biovar Microtus str. 91001 (taxon 229193)" in source["description"]


def test_soft_masked_and_iupac_sequences_are_accepted_as_acgtn(stack, handler):
    data = (FASTA_FIXTURES / "soft_masked_iupac.fa").read_bytes()
    result = invoke(handler, upload(stack, "incoming/soft_masked_iupac.fa", data))
    assert result["status"] == "imported"
    staged = read_staged_fastq(stack, result["stagedObjects"][0])
    assert rejoin_fastq(staged) == {"masked": b"ACGTACGTNN" + b"N" * 11}


def test_replayed_and_duplicate_events_start_one_import_only(stack, handler):
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa").read_bytes()
    event = upload(stack, "incoming/replayed.fa", data)
    duplicate = json.loads(json.dumps(event))
    duplicate["id"] = "another-delivery-of-the-same-object"  # EventBridge at-least-once delivery

    first = invoke(handler, event)
    replayed = invoke(handler, event)
    delivered_twice = invoke(handler, duplicate)

    assert first["status"] == "imported"
    assert replayed == first and delivered_twice == first
    assert import_jobs_of(stack, first) == [first["importJobId"]]


def drop_idempotency_records(stack: LocalStack) -> int:
    """Delete Powertools' records: the state after their TTL (7 days), or after a crash between
    the side effect and the record being saved, once its in-progress expiry has passed."""
    ddb = stack.client("dynamodb")
    dropped = 0
    for item in ddb.scan(TableName=stack.table)["Items"]:
        if item["pk"]["S"].startswith("idempotency#"):
            ddb.delete_item(TableName=stack.table, Key={"pk": item["pk"], "sk": item["sk"]})
            dropped += 1
    return dropped


def test_replay_after_the_idempotency_record_expired_starts_no_second_import(stack, handler):
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa").read_bytes()
    event = upload(stack, "incoming/replayed-past-the-cache.fa", data)
    first = invoke(handler, event)
    import_job(stack, first)
    assert drop_idempotency_records(stack) >= 1  # only HealthOmics' clientToken protects now

    replayed = invoke(handler, event)

    assert replayed["status"] == "imported" and replayed["importJobId"] == first["importJobId"]
    assert import_jobs_of(stack, first) == [first["importJobId"]]
    read_sets = [r for r in stack.read_sets() if r["sampleId"] == "replayed-past-the-cache"]
    assert len(read_sets) == 1


def test_an_older_versions_event_arriving_after_the_newer_ones_imports_only_the_newer(stack, handler):
    old = upload(stack, "incoming/versions.fa", b">v1\nACGTACGT\n")
    new = upload(stack, "incoming/versions.fa", b">v2\nGGGGCCCCAAAATTTT\n")

    newer = invoke(handler, new)
    older = invoke(handler, old)  # out of order: delivered after the newer version's event

    assert newer["status"] == "imported" and older["status"] == "skipped"
    assert "changed since this event" in older["reason"]
    sources = [
        source
        for job in stack.import_jobs()
        for source in stack.import_job(job["id"])["sources"]
        if source["sampleId"] == "versions"
    ]
    assert [s["sourceFiles"]["source1"] for s in sources] == newer["stagedObjects"]
    assert rejoin_fastq(read_staged_fastq(stack, newer["stagedObjects"][0])) == {"v2": b"GGGGCCCCAAAATTTT"}


def test_import_throttling_is_retried_with_backoff_until_it_succeeds(stack, handler):
    from pipeline.aws_clients import client

    sent = record_requests(client("omics"), VirtualClock())
    stack.inject_throttling("omics", "StartReadSetImportJob", times=2)
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa").read_bytes()

    result = invoke(handler, upload(stack, "incoming/throttled.fa", data))

    assert result["status"] == "imported"
    assert [operation for operation, _ in sent] == ["StartReadSetImportJob"] * 3  # 429, 429, accepted
    assert import_jobs_of(stack, result) == [result["importJobId"]]


def template_ingest_rate() -> tuple[float, int]:
    """OMICS_TPS and the reserved concurrency (IngestConcurrency's default) template.yaml gives ingest."""
    template = load_template(REPO / "template.yaml")
    function = template["Resources"]["IngestFastaFunction"]["Properties"]
    tps = float(function["Environment"]["Variables"]["OMICS_TPS"])
    return tps, int(template["Parameters"]["IngestConcurrency"]["Default"])


def test_import_calls_of_one_instance_are_spaced_to_its_share_of_omics_tps(stack, monkeypatch):
    from pipeline.aws_clients import client

    # Given the template's defaults: OMICS_TPS for the function, shared by its reserved instances
    tps, instances = template_ingest_rate()
    monkeypatch.setenv("OMICS_TPS", str(tps))
    monkeypatch.setenv("MAX_CONCURRENCY", str(instances))
    clock = VirtualClock()
    rate_limiters_on(clock, monkeypatch)
    handler = fresh_lambda_module("ingest_fasta.handler")
    sent = record_requests(client("omics"), clock)
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa").read_bytes()

    # When this instance ingests three small files back to back
    for n in range(3):
        assert invoke(handler, upload(stack, f"incoming/spaced/{n}.fa", data))["status"] == "imported"

    # Then its StartReadSetImportJob calls leave 1 / (its share of OMICS_TPS) apart: all the
    # instances together stay within OMICS_TPS, under HealthOmics' 5 TPS
    starts = [at for operation, at in sent if operation == "StartReadSetImportJob"]
    assert len(starts) == 3
    assert [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)] == [
        pytest.approx(instances / tps)
    ] * 2
    assert tps <= 5


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
    stack, handler, fixture, line, problem
):
    key = f"incoming/bad/{fixture}"
    folder = FLAT_FILE_FIXTURES if fixture.endswith((".gb", ".embl")) else FASTA_FIXTURES
    data = (folder / fixture).read_bytes()
    stack.alerts(wait_seconds=0)  # drain
    imports = len(stack.import_jobs())

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
    assert len(stack.import_jobs()) == imports
    [alert] = stack.alerts()
    assert (
        alert["subject"] == f"hyenaflow: rejected bad/{fixture}"
        and alert["details"]["problem"] == reason["problem"]
    )


def test_file_over_max_input_bytes_is_rejected_without_reading_it(stack, handler):
    imports = len(stack.import_jobs())
    data = b">big\n" + b"ACGT" * 300_000  # 1.2 MB > MAX_INPUT_BYTES of this module (1 MiB)
    result = invoke(handler, upload(stack, "incoming/big.fa", data))
    assert result["status"] == "rejected" and "MAX_INPUT_BYTES" in result["message"]
    assert stack.keys("rejected/big.fa") == ["rejected/big.fa", "rejected/big.fa.reason.json"]
    assert len(stack.import_jobs()) == imports


def test_non_fasta_file_name_is_rejected(stack, handler):
    result = invoke(handler, upload(stack, "incoming/notes.txt", b">a\nACGT\n"))
    assert result["status"] == "rejected" and ".fa, .fasta or .fna (FASTA) or .gb" in result["message"]
    assert stack.keys("rejected/notes.txt") == ["rejected/notes.txt", "rejected/notes.txt.reason.json"]


def test_event_for_an_object_that_is_already_gone_is_skipped(stack, handler):
    imports = len(stack.import_jobs())
    event = upload(stack, "incoming/gone.fa", b">a\nACGT\n")
    stack.client("s3").delete_object(Bucket=stack.bucket, Key="incoming/gone.fa")
    assert invoke(handler, event)["status"] == "skipped"
    assert len(stack.import_jobs()) == imports


def long_key(prefix: str, total_chars: int, tail: str = "") -> str:
    """incoming/<folders>/<name>.fa of exactly `total_chars` characters."""
    folders = "".join(f"sequencing-run-{n:02d}-with-a-descriptive-folder-name/" for n in range(10))
    head = f"{prefix}{folders}sample-"
    return head + "x" * (total_chars - len(head) - len(tail) - len(".fa")) + tail + ".fa"


def test_a_key_of_over_a_thousand_characters_is_imported_under_names_healthomics_accepts(stack, handler):
    data = (FASTA_FIXTURES / "phix174_NC_001422.fa").read_bytes()
    key = long_key("incoming/", 1020)
    assert len(key) == 1020  # S3 allows 1,024; the staged key would repeat the file name twice

    result = invoke(handler, upload(stack, key, data))

    assert result["status"] == "imported"  # HealthOmics refuses (ValidationException) what breaks its model
    job = import_job(stack, result)
    assert job["status"] == "COMPLETED"
    [source] = job["sources"]
    staged_key = source["sourceFiles"]["source1"].removeprefix(f"s3://{stack.bucket}/")
    assert len(staged_key.encode()) <= 1024 and staged_key.startswith("staged/sequencing-run-00-")
    assert staged_key.endswith(".001.fastq.gz") and stack.keys(staged_key) == [staged_key]
    assert len(source["sampleId"]) == len(source["subjectId"]) == len(source["name"]) == 127
    assert source["sampleId"].startswith("sample-xxx")
    header, _, sequence = data.partition(b"\n")
    record_id = header[1:].split()[0].decode()
    expected = sequence.replace(b"\r", b"").replace(b"\n", b"").upper()
    assert rejoin_fastq(read_staged_fastq(stack, source["sourceFiles"]["source1"])) == {record_id: expected}


def test_long_keys_that_differ_only_past_what_fits_get_different_staged_keys_and_sample_ids(stack, handler):
    data = b">a\nACGTACGT\n"
    first = invoke(handler, upload(stack, long_key("incoming/", 1010, tail="-1"), data))
    second = invoke(handler, upload(stack, long_key("incoming/", 1010, tail="-2"), data))

    assert first["stagedObjects"] != second["stagedObjects"]
    first_source, second_source = (import_job(stack, result)["sources"][0] for result in (first, second))
    assert first_source["sampleId"] != second_source["sampleId"]
    assert first_source["name"] != second_source["name"]


def test_a_rejected_file_with_a_long_key_gets_its_reason_file_within_the_key_limit(stack, handler):
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
