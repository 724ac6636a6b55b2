"""poll_genbank against a local E-utilities server (real response formats) and the local AWS
server (moto, with the HealthOmics emulation that imports the poll's file)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

import pipeline.genbank.eutils as eutils_client
from tests.integration.eutils_server import EutilsServer, FakeEutils, GenbankRecord
from tests.support.lambda_env import EVENTS, LambdaContext, fresh_lambda_module, reset_lambda_clients
from tests.support.local_stack import LocalStack, local_stack

QUERY = "Caudoviricetes[Organism] AND complete genome[Title]"
LAMBDA = "ATGAAAGCGTTAACGGCCAGGCAACAAGAGGTGTTTGATCTCATCCGTGATCACATCAGCCAGACAGGTATGCCGCCGACGCGTGCGGAA"


def genbank_record(uid: str, accession: str, modified: date, length: int = 150) -> GenbankRecord:
    sequence = (LAMBDA * (length // len(LAMBDA) + 1))[:length]
    return GenbankRecord(uid, accession, f"Escherichia phage {uid}, complete genome", sequence, modified)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(tmp_path_factory.mktemp("aws")) as running:
        yield running


@pytest.fixture
def eutils(stack: LocalStack) -> Iterator[EutilsServer]:
    with EutilsServer(FakeEutils()) as server:
        yield server


@pytest.fixture
def poll_env(stack: LocalStack, eutils: EutilsServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    table = f"state-{len(os.environ.get('PYTEST_CURRENT_TEST', ''))}-{id(eutils)}"
    stack.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    env = {
        "DATA_BUCKET": stack.bucket,
        "STATE_TABLE": table,
        "ALERT_TOPIC_ARN": stack.topic_arn,
        "GENBANK_QUERY": QUERY,
        "GENBANK_DB": "nuccore",
        "GENBANK_BATCH_SIZE": "2",
        "GENBANK_MAX_RECORDS_PER_RUN": "50",
        "NCBI_EMAIL": "pipeline@example.org",
        "NCBI_TOOL": "hyenaflow-test",
        "EUTILS_BASE_URL": eutils.base_url,
        "POWERTOOLS_SERVICE_NAME": "poll_genbank",
        "POWERTOOLS_METRICS_NAMESPACE": "hyenaflow",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NCBI_API_KEY_PARAMETER", raising=False)
    return env


def run_poll(at: str) -> dict[str, Any]:
    handler = fresh_lambda_module("poll_genbank.handler")
    event = json.loads((EVENTS / "schedule_poll_genbank.json").read_text())
    event["time"] = at
    return handler.lambda_handler(event, LambdaContext("hyenaflow-poll-genbank"))


def genbank_keys(stack: LocalStack) -> list[str]:
    return stack.keys("incoming/genbank/")


def run_key(at: str) -> str:
    """The one FASTA a poll scheduled at `at` (ISO, UTC) writes."""
    return f"incoming/genbank/genbank-{at.replace('-', '').replace(':', '')}.fa"


def read(stack: LocalStack, key: str) -> bytes:
    return stack.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read()


def fasta_records(data: bytes) -> dict[str, bytes]:
    """FASTA bytes -> {header line (without '>'): record bytes}, in file order."""
    records: dict[str, bytes] = {}
    for chunk in data.split(b"\n>"):
        chunk = chunk.removeprefix(b">")
        header = chunk.split(b"\n", 1)[0].decode()
        records[header] = b">" + chunk.rstrip(b"\n") + b"\n"
    return records


def record_ids(data: bytes) -> list[str]:
    return [header.split()[0] for header in fasta_records(data)]


def clear_genbank(stack: LocalStack) -> None:
    s3 = stack.client("s3")
    for key in genbank_keys(stack):
        s3.delete_object(Bucket=stack.bucket, Key=key)


def test_first_poll_writes_the_new_records_of_the_lookback_window_as_one_fasta(stack, eutils, poll_env):
    clear_genbank(stack)
    eutils.fake.records = [
        genbank_record("2001", "OQ100001.1", date(2026, 11, 10)),
        genbank_record("2002", "OQ100002.1", date(2026, 11, 11), length=250),
        genbank_record("2003", "OQ100003.2", date(2026, 11, 12)),
        genbank_record("1999", "OQ099999.1", date(2026, 10, 1)),  # before the 7-day lookback
    ]

    result = run_poll("2026-11-12T06:00:00Z")

    assert result["found"] == 3 and result["written"] == 3 and result["complete"]
    assert genbank_keys(stack) == [run_key("2026-11-12T06:00:00Z")] == [result["key"]]
    data = read(stack, result["key"])
    assert record_ids(data) == ["OQ100001.1", "OQ100002.1", "OQ100003.2"]  # accessions stay the record ids
    record = fasta_records(data)["OQ100002.1 Escherichia phage 2002, complete genome"]
    assert b"".join(record.split(b"\n")[1:]) == eutils.fake.records[1].sequence.encode()
    assert result["bytes_written"] == len(data)
    [search] = eutils.fake.calls("esearch.fcgi")
    assert search.params["term"] == QUERY and search.params["usehistory"] == "y"
    assert (search.params["datetype"], search.params["mindate"], search.params["maxdate"]) == (
        "mdat",
        "2026/11/05",
        "2026/11/12",
    )
    assert search.params["tool"] == "hyenaflow-test" and search.params["email"] == "pipeline@example.org"
    fetches = eutils.fake.calls("efetch.fcgi")
    assert [(f.params["retstart"], f.params["retmax"]) for f in fetches] == [("0", "2"), ("2", "2")]
    assert all(f.params["rettype"] == "fasta" and f.params["WebEnv"] for f in fetches)


def test_next_poll_starts_at_the_last_window_and_skips_versions_already_ingested(stack, eutils, poll_env):
    clear_genbank(stack)
    eutils.fake.records = [genbank_record("2001", "OQ100001.1", date(2026, 11, 12))]
    run_poll("2026-11-12T06:00:00Z")
    clear_genbank(stack)  # ingest_fasta consumed the file; the state table still remembers it
    eutils.fake.records += [
        genbank_record("2004", "OQ100001.2", date(2026, 11, 13)),  # a new version of the same accession
        genbank_record("2005", "OQ100005.1", date(2026, 11, 13)),
    ]

    result = run_poll("2026-11-13T06:00:00Z")

    assert result["written"] == 2 and result["skipped_seen"] == 1
    assert genbank_keys(stack) == [run_key("2026-11-13T06:00:00Z")]
    assert record_ids(read(stack, run_key("2026-11-13T06:00:00Z"))) == ["OQ100001.2", "OQ100005.1"]
    second_search = eutils.fake.calls("esearch.fcgi")[1]
    assert (second_search.params["mindate"], second_search.params["maxdate"]) == ("2026/11/12", "2026/11/13")


def test_ncbi_429_and_500_answers_are_retried_with_backoff(stack, eutils, poll_env):
    clear_genbank(stack)
    eutils.fake.records = [genbank_record("2001", "OQ100001.1", date(2026, 11, 12))]
    eutils.fake.fail_next("esearch.fcgi", 500)
    eutils.fake.fail_next("efetch.fcgi", 429)

    result = run_poll("2026-11-12T06:00:00Z")

    assert result["written"] == 1 and result["complete"]
    assert len(eutils.fake.calls("esearch.fcgi")) == 2 and len(eutils.fake.calls("efetch.fcgi")) == 2
    fetches = eutils.fake.calls("efetch.fcgi")
    assert fetches[1].at - fetches[0].at >= 0.9  # backoff of ~1 s after the 429


def test_requests_never_exceed_three_per_second_without_an_api_key(stack, eutils, poll_env):
    clear_genbank(stack)
    eutils.fake.records = [
        genbank_record(str(3000 + n), f"OQ2000{n:02d}.1", date(2026, 11, 12)) for n in range(8)
    ]

    run_poll("2026-11-12T06:00:00Z")

    starts = [r.at for r in eutils.fake.requests]
    assert len(starts) == 5  # 1 esearch + 4 efetch batches of 2
    for earlier, later in zip(starts, starts[3:], strict=False):
        assert later - earlier >= 1.0 - 0.05  # any 4 consecutive requests span at least a second
    assert "api_key" not in eutils.fake.requests[0].params


def test_api_key_from_ssm_is_sent_and_allows_ten_requests_per_second(stack, eutils, poll_env, monkeypatch):
    clear_genbank(stack)
    stack.client("ssm").put_parameter(
        Name="/hyenaflow/ncbi-api-key", Value="0123456789abcdef", Type="SecureString", Overwrite=True
    )
    monkeypatch.setenv("NCBI_API_KEY_PARAMETER", "/hyenaflow/ncbi-api-key")
    eutils.fake.records = [
        genbank_record(str(3000 + n), f"OQ3000{n:02d}.1", date(2026, 11, 12)) for n in range(8)
    ]

    limiters: list[eutils_client.RateLimiter] = []

    class RecordedRateLimiter(eutils_client.RateLimiter):
        def __init__(self, per_second: float, **kwargs: Any) -> None:
            super().__init__(per_second, **kwargs)
            limiters.append(self)

    # The rate is read off the limiter the handler built, not off the wall clock: a loaded
    # machine may run slower than 10/s, never faster.
    monkeypatch.setattr(eutils_client, "RateLimiter", RecordedRateLimiter)

    run_poll("2026-11-12T06:00:00Z")

    assert {r.params.get("api_key") for r in eutils.fake.requests} == {"0123456789abcdef"}
    assert [limiter.interval for limiter in limiters] == [pytest.approx(0.1)]
    starts = [r.at for r in eutils.fake.requests]
    assert len(starts) == 5
    for earlier, later in zip(starts, starts[1:], strict=False):
        assert later - earlier >= 0.1 - 0.02


def test_cap_per_run_leaves_the_window_open_for_the_next_run(stack, eutils, poll_env, monkeypatch):
    clear_genbank(stack)
    monkeypatch.setenv("GENBANK_MAX_RECORDS_PER_RUN", "2")
    eutils.fake.records = [
        genbank_record(str(4000 + n), f"OQ4000{n:02d}.1", date(2026, 11, 12)) for n in range(3)
    ]

    first = run_poll("2026-11-12T06:00:00Z")
    second = run_poll("2026-11-12T07:00:00Z")

    assert (first["written"], first["complete"]) == (2, False)
    assert (second["written"], second["skipped_seen"], second["complete"]) == (1, 2, True)
    searches = eutils.fake.calls("esearch.fcgi")
    assert searches[0].params["mindate"] == searches[1].params["mindate"] == "2026/11/05"
    assert genbank_keys(stack) == [first["key"], second["key"]]  # one object per run
    assert record_ids(read(stack, first["key"])) == ["OQ400000.1", "OQ400001.1"]
    assert record_ids(read(stack, second["key"])) == ["OQ400002.1"]


def test_ncbi_down_fails_the_run_and_records_no_progress(stack, eutils, poll_env):
    from pipeline.aws_clients import client
    from pipeline.genbank.eutils import EutilsClient, EutilsError
    from pipeline.genbank.poller import PollConfig, poll_genbank
    from pipeline.state_table import GenbankPollState

    clear_genbank(stack)
    eutils.fake.records = [genbank_record("2001", "OQ100001.1", date(2026, 11, 12))]
    eutils.fake.fail_next("efetch.fcgi", 503, 503, 503)
    reset_lambda_clients()
    config = PollConfig("nuccore", QUERY, batch_size=2, max_records_per_run=10, initial_lookback_days=7)
    state = GenbankPollState(client("dynamodb"), poll_env["STATE_TABLE"], db=config.db, query=config.query)
    quick = EutilsClient(eutils.base_url, tool="t", email=None, max_attempts=3, backoff_base_s=0.01)

    with pytest.raises(EutilsError, match="efetch.fcgi: HTTP 503 after 3 attempt"):
        poll_genbank(
            now=datetime(2026, 11, 12, 6, tzinfo=UTC),
            config=config,
            eutils=quick,
            state=state,
            s3=client("s3"),
            bucket=stack.bucket,
        )
    assert state.window_end() is None and genbank_keys(stack) == []
    assert stack.open_multipart_uploads() == []


def test_polled_run_is_ingested_as_one_read_set_whose_tiles_keep_each_accession(
    stack, eutils, poll_env, monkeypatch
):
    import gzip

    from pipeline.aws_clients import client
    from pipeline.ingest.settings import IngestSettings
    from pipeline.ingest.uploaded_fasta import UploadedObject, ingest_uploaded_fasta
    from tests.support.fastq_tiles import parse_tile_name

    clear_genbank(stack)
    eutils.fake.records = [
        genbank_record("2001", "OQ100001.1", date(2026, 11, 12)),
        genbank_record("2002", "OQ100002.1", date(2026, 11, 12), length=90),
    ]
    key = run_poll("2026-11-12T06:00:00Z")["key"]
    head = stack.client("s3").head_object(Bucket=stack.bucket, Key=key)
    settings = IngestSettings(
        data_bucket=stack.bucket,
        state_table=poll_env["STATE_TABLE"],
        alert_topic_arn=stack.topic_arn,
        sequence_store_id=stack.sequence_store_id,
        omics_import_role_arn="arn:aws:iam::111122223333:role/import",
    )
    uploaded = UploadedObject(stack.bucket, key, head["ETag"].strip('"'), 0)

    result = ingest_uploaded_fasta(
        uploaded, s3=client("s3"), omics=client("omics"), settings=settings, alert=print
    )

    assert result["status"] == "imported" and result["records"] == 2 and result["bases"] == 240
    job = stack.wait_for_import(result["importJobId"])
    assert job["status"] == "COMPLETED"
    [source] = job["sources"]
    assert source["sampleId"] == "genbank-20261112T060000Z"
    staged_key = result["stagedObjects"][0].split(f"s3://{stack.bucket}/", 1)[1]
    fastq = gzip.decompress(stack.client("s3").get_object(Bucket=stack.bucket, Key=staged_key)["Body"].read())
    tile_records = {parse_tile_name(line[1:].decode())[0] for line in fastq.split(b"\n")[0::4] if line}
    assert tile_records == {"OQ100001.1", "OQ100002.1"}


def test_a_record_without_an_accession_version_is_reported_and_does_not_block_the_poll(
    stack, eutils, poll_env
):
    clear_genbank(stack)
    eutils.fake.records = [
        genbank_record("2001", "OQ100001.1", date(2026, 11, 12)),
        genbank_record("2002", "lcl|unnamed", date(2026, 11, 12)),
    ]

    result = run_poll("2026-11-12T06:00:00Z")

    assert result["written"] == 1 and result["complete"]
    assert result["skipped_without_accession"] == [">lcl|unnamed Escherichia phage 2002, complete genome"]
    assert genbank_keys(stack) == [result["key"]]
    assert record_ids(read(stack, result["key"])) == ["OQ100001.1"]


def test_ncbi_refusing_the_request_alerts_the_operator_and_fails_the_invocation(stack, eutils, poll_env):
    from pipeline.genbank.eutils import EutilsError

    clear_genbank(stack)  # an earlier test's object at this run's key would be taken for this run's
    stack.alerts(wait_seconds=0)  # drain
    eutils.fake.fail_next("esearch.fcgi", 400)  # not retryable: a bad request stays bad

    with pytest.raises(EutilsError, match="esearch.fcgi: HTTP 400 after 1 attempt"):
        run_poll("2026-11-12T06:00:00Z")

    [alert] = stack.alerts()
    assert alert["subject"] == "hyenaflow: GenBank poll failed" and alert["details"]["query"] == QUERY


def test_eventbridge_scheduler_payloads_without_the_scheduled_event_envelope_are_accepted(
    stack, eutils, poll_env
):
    clear_genbank(stack)
    today = datetime.now(UTC).date()
    eutils.fake.records = [genbank_record("2001", "OQ100001.1", today)]
    handler = fresh_lambda_module("poll_genbank.handler")
    context = LambdaContext("hyenaflow-poll-genbank")

    with_time = handler.lambda_handler({"time": "2026-11-12T06:00:00Z"}, context)  # Scheduler Input template
    empty = handler.lambda_handler({}, context)  # Scheduler with no Input: the poll uses the current time

    assert with_time["window_end"].startswith("2026-11-12T06:00:00")
    assert empty["window_end"].startswith(today.isoformat()) and empty["written"] == 1


def test_records_ingest_would_refuse_are_skipped_reported_and_do_not_cost_the_others_their_import(
    stack, eutils, poll_env
):
    clear_genbank(stack)
    stack.alerts(wait_seconds=0)  # drain
    empty = GenbankRecord("2002", "OQ100002.1", "WGS master record", "", date(2026, 11, 12))
    protein = GenbankRecord(
        "2003", "OQ100003.1", "mislabelled protein", "MKVLILACLVALALA", date(2026, 11, 12)
    )
    eutils.fake.records = [genbank_record("2001", "OQ100001.1", date(2026, 11, 12)), empty, protein]

    result = run_poll("2026-11-12T06:00:00Z")

    assert result["written"] == 1 and result["complete"]
    assert record_ids(read(stack, result["key"])) == ["OQ100001.1"]
    assert result["skipped_invalid"] == [
        "OQ100002.1: no sequence",
        "OQ100003.1: characters that are not IUPAC nucleotide codes",
    ]
    [alert] = stack.alerts()
    assert alert["subject"] == "hyenaflow: GenBank records skipped"
    assert alert["details"]["skipped"] == result["skipped_invalid"]


def test_byte_cap_per_run_ends_the_object_and_leaves_the_rest_for_the_next_run(
    stack, eutils, poll_env, monkeypatch
):
    clear_genbank(stack)
    monkeypatch.setenv("GENBANK_MAX_BYTES_PER_RUN", "500")  # two of these ~215-byte records per object
    eutils.fake.records = [
        genbank_record(str(5000 + n), f"OQ5000{n:02d}.1", date(2026, 11, 12)) for n in range(3)
    ] + [genbank_record("5099", "OQ509999.1", date(2026, 11, 12), length=600)]  # alone over the cap

    first = run_poll("2026-11-12T06:00:00Z")
    second = run_poll("2026-11-12T07:00:00Z")

    assert (first["written"], first["complete"]) == (2, False) and first["bytes_written"] <= 500
    assert (second["written"], second["complete"]) == (1, True)
    assert record_ids(read(stack, first["key"])) == ["OQ500000.1", "OQ500001.1"]
    assert record_ids(read(stack, second["key"])) == ["OQ500002.1"]
    big = len(eutils.fake.records[-1].fasta()) - 1  # efetch's record without the blank line after it
    assert second["skipped_invalid"] == [f"OQ509999.1: {big} bytes, over GENBANK_MAX_BYTES_PER_RUN (500)"]


def test_a_retry_after_a_crash_before_the_object_was_complete_writes_it_once(
    stack, eutils, poll_env, monkeypatch
):
    from pipeline.genbank import fasta_object

    clear_genbank(stack)
    eutils.fake.records = [genbank_record("2001", "OQ100001.1", date(2026, 11, 12))]
    complete = fasta_object.FastaObjectUpload.complete

    def crash(self):
        raise ConnectionError("connection reset while completing the upload")

    monkeypatch.setattr(fasta_object.FastaObjectUpload, "complete", crash)
    with pytest.raises(ConnectionError):
        run_poll("2026-11-12T06:00:00Z")
    assert genbank_keys(stack) == [] and stack.open_multipart_uploads() == []

    monkeypatch.setattr(fasta_object.FastaObjectUpload, "complete", complete)
    retry = run_poll("2026-11-12T06:00:00Z")  # Lambda retries the same event: same scheduled time

    assert (retry["written"], retry["skipped_seen"], retry["complete"]) == (1, 0, True)
    assert genbank_keys(stack) == [run_key("2026-11-12T06:00:00Z")]


def test_a_retry_after_a_crash_behind_a_complete_object_marks_its_records_and_writes_no_second_one(
    stack, eutils, poll_env, monkeypatch
):
    from pipeline import state_table

    clear_genbank(stack)
    eutils.fake.records = [
        genbank_record(str(6000 + n), f"OQ6000{n:02d}.1", date(2026, 11, 12)) for n in range(3)
    ]
    mark_seen = state_table.GenbankPollState.mark_seen

    def crash(self, accessions, key):
        raise TimeoutError("Lambda timed out before the seen-items were written")

    monkeypatch.setattr(state_table.GenbankPollState, "mark_seen", crash)
    with pytest.raises(TimeoutError):
        run_poll("2026-11-12T06:00:00Z")
    [key] = genbank_keys(stack)
    etag = stack.client("s3").head_object(Bucket=stack.bucket, Key=key)["ETag"]

    monkeypatch.setattr(state_table.GenbankPollState, "mark_seen", mark_seen)
    retry = run_poll("2026-11-12T06:00:00Z")
    later = run_poll("2026-11-12T07:00:00Z")

    assert (retry["written"], retry["recovered"], retry["key"], retry["complete"]) == (0, 3, key, False)
    assert genbank_keys(stack) == [key]  # ingest saw one object, once
    assert stack.client("s3").head_object(Bucket=stack.bucket, Key=key)["ETag"] == etag
    assert (later["written"], later["skipped_seen"], later["complete"]) == (0, 3, True)
    assert len(eutils.fake.calls("esearch.fcgi")) == 2  # the recovering attempt asked NCBI nothing


def test_an_attempt_racing_another_of_the_same_run_never_overwrites_its_object(
    stack, eutils, poll_env, monkeypatch
):
    from pipeline.genbank import fasta_object

    clear_genbank(stack)
    eutils.fake.records = [
        genbank_record("2001", "OQ100001.1", date(2026, 11, 12)),
        genbank_record("2002", "OQ100002.1", date(2026, 11, 12)),
    ]
    key = run_key("2026-11-12T06:00:00Z")
    other_attempt = b">OQ100001.1 written by the other attempt\nACGT\n"
    complete = fasta_object.FastaObjectUpload.complete

    def other_attempt_finishes_first(self):
        stack.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=other_attempt)
        return complete(self)

    monkeypatch.setattr(fasta_object.FastaObjectUpload, "complete", other_attempt_finishes_first)
    result = run_poll("2026-11-12T06:00:00Z")

    assert read(stack, key) == other_attempt and stack.open_multipart_uploads() == []
    assert (result["written"], result["recovered"], result["complete"]) == (0, 1, False)
    monkeypatch.setattr(fasta_object.FastaObjectUpload, "complete", complete)
    later = run_poll("2026-11-12T07:00:00Z")  # what the other attempt's object lacked comes next
    assert record_ids(read(stack, later["key"])) == ["OQ100002.1"]


def test_a_retry_finds_its_earlier_attempts_object_in_rejected_when_ingest_refused_it(
    stack, eutils, poll_env
):
    clear_genbank(stack)
    eutils.fake.records = [genbank_record("2001", "OQ100001.1", date(2026, 11, 12))]
    moved = "rejected/genbank/genbank-20261112T060000Z.fa"  # where ingest moves a file it refuses
    stack.client("s3").put_object(Bucket=stack.bucket, Key=moved, Body=b">OQ100001.1 x\nACGT\n")
    try:
        retry = run_poll("2026-11-12T06:00:00Z")
        later = run_poll("2026-11-12T07:00:00Z")
    finally:
        stack.client("s3").delete_object(Bucket=stack.bucket, Key=moved)

    assert (retry["key"], retry["recovered"], retry["written"]) == (moved, 1, 0)
    assert (later["written"], later["skipped_seen"]) == (0, 1) and genbank_keys(stack) == []
