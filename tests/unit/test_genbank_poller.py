"""poll_genbank's pure parts: accession parsing, record ids and checks, the run's key, NCBI request
spacing, retry delays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.genbank.eutils import EutilsClient
from pipeline.genbank.poller import accession_of, problem_with, run_object_key, with_accession_id
from pipeline.rate_limiter import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("header", "accession"),
    [
        (b">NC_001416.1 Escherichia phage Lambda, complete genome", "NC_001416.1"),
        (b">MN908947.3 Severe acute respiratory syndrome coronavirus 2 isolate Wuhan-Hu-1", "MN908947.3"),
        (b">gi|9626243|ref|NC_001416.1| Enterobacteria phage lambda", "NC_001416.1"),
        (b">NZ_CP012345.1 Escherichia coli chromosome", "NZ_CP012345.1"),
    ],
)
def test_accession_version_is_read_from_ncbi_fasta_headers(header, accession):
    assert accession_of(header) == accession


@pytest.mark.parametrize("header", [b">", b">../../etc/passwd x", b">NC_001416 no version"])
def test_headers_without_a_safe_accession_version_are_refused(header):
    with pytest.raises(ValueError, match="no accession.version"):
        accession_of(header)


def test_requests_are_spaced_to_three_per_second_without_an_api_key():
    clock = FakeClock()
    client = EutilsClient("http://127.0.0.1:9/", tool="t", email=None, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(7):
        client.limiter.wait()
        starts.append(clock.now)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= 1 / 3 - 1e-9 for gap in gaps)
    assert starts[-1] - starts[0] == pytest.approx(2.0)  # 7 requests take 2 s: 3 per second


def test_an_api_key_allows_ten_requests_per_second():
    clock = FakeClock()
    client = EutilsClient("http://x/", tool="t", email=None, api_key="k", clock=clock, sleep=clock.sleep)
    for _ in range(11):
        client.limiter.wait()
    assert clock.now - 100.0 == pytest.approx(1.0)


def test_a_limiter_that_was_idle_does_not_sleep():
    clock = FakeClock()
    limiter = RateLimiter(3, clock=clock, sleep=clock.sleep)
    limiter.wait()
    clock.now += 5
    limiter.wait()
    assert clock.slept == []


def test_retry_delay_grows_exponentially_and_honours_retry_after():
    client = EutilsClient("http://x/", tool="t", email=None, backoff_base_s=0.5, backoff_max_s=4)
    assert [client._retry_delay(n, None) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert client._retry_delay(1, "3") == 3.0


def test_every_record_of_a_run_file_has_its_accession_as_its_fasta_id():
    ncbi = b">NC_001416.1 Escherichia phage Lambda, complete genome\nACGT\n"
    legacy = b">gi|9626243|ref|NC_001416.1| Enterobacteria phage lambda\nACGT\n"
    assert with_accession_id(ncbi, "NC_001416.1") == ncbi  # already first: byte for byte the same
    assert with_accession_id(legacy, "NC_001416.1") == (
        b">NC_001416.1 gi|9626243|ref|NC_001416.1| Enterobacteria phage lambda\nACGT\n"
    )


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (b">A.1 ok\nACGTNRY\nacgt\n", None),
        (b">A.1 master record\n", "no sequence"),
        (b">A.1 protein\nMKVLIL\n", "characters that are not IUPAC nucleotide codes"),
        (b">A.1 rna\nACGU\n", "characters that are not IUPAC nucleotide codes"),
        (b">A.1 caf\xe9\nACGT\n", "header is not UTF-8 text"),
        (b">A.1 big\n" + b"A" * 100 + b"\n", "110 bytes, over GENBANK_MAX_BYTES_PER_RUN (100)"),
    ],
)
def test_records_ingest_would_refuse_are_recognised_before_they_join_a_run_file(record, problem):
    assert problem_with(record, max_bytes=100) == problem


def test_a_run_file_is_named_by_the_scheduled_time_so_a_retry_writes_the_same_key():
    scheduled = datetime(2026, 11, 12, 6, 0, tzinfo=UTC)
    same_moment = scheduled.astimezone(timezone(timedelta(hours=2)))
    assert (
        run_object_key(scheduled)
        == run_object_key(same_moment)
        == "incoming/genbank/genbank-20261112T060000Z.fa"
    )
    assert run_object_key(scheduled + timedelta(hours=1)) != run_object_key(scheduled)


def test_the_poller_looks_for_refused_run_files_where_ingest_moves_them():
    from pipeline.genbank.poller import INCOMING_GENBANK_PREFIX, REJECTED_GENBANK_PREFIX
    from pipeline.ingest.uploaded_fasta import GENBANK_PREFIX, INCOMING_PREFIX, REJECTED_PREFIX

    assert INCOMING_GENBANK_PREFIX == GENBANK_PREFIX
    assert REJECTED_GENBANK_PREFIX == REJECTED_PREFIX + GENBANK_PREFIX.removeprefix(INCOMING_PREFIX)
