"""Poll GenBank for new or updated sequences; one run writes them all as ONE multi-record FASTA,
incoming/genbank/genbank-<scheduled time>.fa.

Why one object per run: ingest turns each object into one HealthOmics import, and each import
into one start_training event. A poll of 500 records written as 500 files meant 500 ingest
invocations, 500 StartReadSetImportJob calls and 500 import events against HealthOmics quotas
of about 5 TPS; as one file it is one of each (docs/deploy.md, "HealthOmics quotas").

The object: efetch batches stream into one S3 multipart upload (pipeline.genbank.fasta_object;
memory holds one part and one record). Each record's header starts with its accession.version,
so the FASTA record id, and with it every tile of the read set (`<accession>:<start>-<end>`),
keeps it. The key depends only on the run's scheduled time: a retried run uses the same key.
Skipped, and reported in the result (and by an alert for invalid ones): records without an
accession.version, versions already seen, and records ingest would reject (no sequence, not
IUPAC DNA, or alone larger than the per-run byte cap): one bad record must not cost the run's
other records their import.

Caps per object: GENBANK_MAX_RECORDS_PER_RUN records and GENBANK_MAX_BYTES_PER_RUN bytes
(template: ingest's MAX_INPUT_BYTES, so ingest never rejects a poll's file for its size). A run
that reaches a cap writes what it has and leaves the window where it was; the next run skips
what is already seen and continues.

State in the pipeline's state table (pipeline.state_table.GenbankPollState):
- per query, `window_end`: the end of the last modification-date window that was fetched
  completely. The next window starts there (E-utilities dates are whole days, so consecutive
  windows overlap by a day; the seen-items below absorb the overlap).
- per accession.version, a seen-item: this version is in a complete S3 object.

Progress is recorded only after the object is complete, in this order: (1) the object is
completed (If-None-Match: *, so never over an earlier attempt's object), (2) its records are
marked seen, (3) the window end is recorded. A crash before (1) leaves no object and nothing
seen: the retry starts over. A crash between (1) and (3) leaves the object: the retry (same
scheduled time, same key) finds it, marks exactly the records it holds as seen and writes
nothing; the window stays, so the next run fetches whatever that object did not hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws_errors import error_code
from pipeline.dependencies import Dependencies
from pipeline.dna_alphabet import INVALID_BYTE, normalize_bases
from pipeline.genbank.eutils import EutilsClient, EutilsError
from pipeline.genbank.fasta_object import FastaObjectUpload, ObjectAlreadyExists
from pipeline.genbank.settings import PollSettings
from pipeline.state_table import GenbankPollState

INCOMING_GENBANK_PREFIX = "incoming/genbank/"
# Where ingest moves a file it refuses (its REJECTED_PREFIX + the same folder; a unit test keeps
# the two in step). Not imported from pipeline.ingest: that would add ~60 ms to this cold start.
REJECTED_GENBANK_PREFIX = "rejected/genbank/"
# accession.version, e.g. NC_001416.1, MN908947.3, NZ_CP012345.1, AAAA02000001.1
ACCESSION_VERSION = re.compile(r"^[A-Z]{1,6}_?[A-Z]{0,4}[0-9]+\.[0-9]+$")


@dataclass(frozen=True)
class PollConfig:
    db: str
    query: str
    batch_size: int
    max_records_per_run: int
    initial_lookback_days: int
    max_bytes_per_run: int = 5 * 1024**3

    @classmethod
    def from_settings(cls, settings: PollSettings) -> PollConfig:
        return cls(
            db=settings.genbank_db,
            query=settings.genbank_query,
            batch_size=settings.genbank_batch_size,
            max_records_per_run=settings.genbank_max_records_per_run,
            initial_lookback_days=settings.genbank_initial_lookback_days,
            max_bytes_per_run=settings.genbank_max_bytes_per_run,
        )


@dataclass
class PollResult:
    window_start: str
    window_end: str
    key: str | None = None  # the run's FASTA object, if it wrote one
    found: int = 0
    written: int = 0  # records in the run's object
    bytes_written: int = 0
    skipped_seen: int = 0
    skipped_without_accession: list[str] = field(default_factory=list)  # headers we could not name
    skipped_invalid: list[str] = field(default_factory=list)  # "<accession>: <why ingest would refuse it>"
    recovered: int = 0  # records of an earlier attempt's object, marked seen by this attempt
    complete: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def accession_of(header: bytes) -> str:
    """`>NC_001416.1 Escherichia phage Lambda...` -> `NC_001416.1` (also `>gi|..|ref|NC_..|` headers)."""
    first = header[1:].split(None, 1)[0].decode("ascii", "replace") if header[1:].strip() else ""
    candidates = [first, *first.split("|")]
    for candidate in candidates:
        if ACCESSION_VERSION.match(candidate):
            return candidate
    raise ValueError(f"no accession.version in FASTA header {header[:100]!r}")


def with_accession_id(record: bytes, accession: str) -> bytes:
    """The record with `accession` as its FASTA id (the header's first word), the rest kept."""
    header, newline, body = record.partition(b"\n")
    if header[1:].split(None, 1)[0] == accession.encode():
        return record
    return b">" + accession.encode() + b" " + header[1:] + newline + body


def problem_with(record: bytes, max_bytes: int) -> str | None:
    """Why ingest would refuse this record (and with it the whole run's file), or None."""
    header, _, body = record.partition(b"\n")
    try:
        header.decode("utf-8")
    except UnicodeDecodeError:
        return "header is not UTF-8 text"
    bases = normalize_bases(body)
    if not bases:
        return "no sequence"
    if INVALID_BYTE in bases:
        return "characters that are not IUPAC nucleotide codes"
    if len(record) > max_bytes:
        return f"{len(record):,} bytes, over GENBANK_MAX_BYTES_PER_RUN ({max_bytes:,})"
    return None


def run_object_key(now: datetime) -> str:
    return f"{INCOMING_GENBANK_PREFIX}genbank-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.fa"


def poll_for_new_records(deps: Dependencies[PollSettings], now: datetime) -> PollResult:
    """One scheduled poll with the function's settings; alerts (and raises) when NCBI keeps failing."""
    settings = deps.settings
    config = PollConfig.from_settings(settings)
    api_key = None
    if settings.ncbi_api_key_parameter:
        # Powertools caches the decrypted value for max_age seconds across warm invocations.
        api_key = str(deps.parameters.get(settings.ncbi_api_key_parameter, decrypt=True, max_age=900))
    eutils = EutilsClient(
        settings.eutils_base_url, tool=settings.ncbi_tool, email=settings.ncbi_email, api_key=api_key
    )
    try:
        result = poll_genbank(
            now=now,
            config=config,
            eutils=eutils,
            state=GenbankPollState(deps.dynamodb, settings.state_table, db=config.db, query=config.query),
            s3=deps.s3,
            bucket=settings.data_bucket,
        )
    except EutilsError as err:  # NCBI still failing after retries: tell the operator, let Lambda retry
        deps.alert("hyenaflow: GenBank poll failed", {"query": config.query, "error": str(err)})
        raise
    if result.skipped_invalid:
        deps.alert(
            "hyenaflow: GenBank records skipped",
            {
                "query": config.query,
                "skipped": result.skipped_invalid,
                "whatNext": "these versions are not ingested; a corrected version is picked up when NCBI publishes it",
            },
        )
    return result


def poll_genbank(
    *,
    now: datetime,
    config: PollConfig,
    eutils: EutilsClient,
    state: GenbankPollState,
    s3: Any,
    bucket: str,
) -> PollResult:
    last_end = state.window_end()
    start = last_end or now - timedelta(days=config.initial_lookback_days)
    result = PollResult(window_start=start.isoformat(), window_end=now.isoformat())
    if last_end is not None and last_end >= now:
        result.complete = True  # a replayed older schedule: that window is done, never move it back
        return result
    key = run_object_key(now)
    if _recover_earlier_attempt(s3, bucket, key, state, result):
        return result
    search = eutils.esearch(config.db, config.query, _day(start), _day(now))
    result.found = search.count
    upload = FastaObjectUpload(s3, bucket, key)
    accessions: list[str] = []
    try:
        capped = _write_new_records(eutils, search, config, state, upload, accessions, result)
        if accessions:
            upload.complete()
    except ObjectAlreadyExists:  # an attempt running at the same time finished first
        _recover_earlier_attempt(s3, bucket, key, state, result)
        return result
    except BaseException:
        upload.abort()
        raise
    if accessions:
        state.mark_seen(accessions, key)
        result.key, result.written, result.bytes_written = key, len(accessions), upload.bytes_written
    if not capped:  # every record of the window is in S3 (or was before): move the window on
        state.record_window_end(now, result.written)
        result.complete = True
    return result


def _write_new_records(
    eutils: EutilsClient,
    search: Any,
    config: PollConfig,
    state: GenbankPollState,
    upload: FastaObjectUpload,
    accessions: list[str],
    result: PollResult,
) -> bool:
    """Stream the window's new records into `upload`; True if a cap stopped it early."""
    in_this_run: set[str] = set()
    for retstart in range(0, search.count, config.batch_size):
        # Records stream from the response one at a time: memory holds the largest record, not the batch.
        for record in eutils.efetch_fasta(config.db, search, retstart, config.batch_size):
            header = record.split(b"\n", 1)[0]
            try:
                accession = accession_of(header)
            except ValueError:
                # One odd record must not block every later poll; it is reported in the result.
                result.skipped_without_accession.append(header[:100].decode("utf-8", "replace"))
                continue
            if accession in in_this_run or state.is_seen(accession):
                result.skipped_seen += 1
                continue
            named = with_accession_id(record, accession)
            problem = problem_with(named, config.max_bytes_per_run)
            if problem:
                result.skipped_invalid.append(f"{accession}: {problem}")
                continue
            if len(accessions) >= config.max_records_per_run or (
                upload.bytes_written + len(named) > config.max_bytes_per_run
            ):
                return True  # cap reached: the window stays, the next run continues
            upload.write(named)
            accessions.append(accession)
            in_this_run.add(accession)
    return False


def _recover_earlier_attempt(
    s3: Any, bucket: str, key: str, state: GenbankPollState, result: PollResult
) -> bool:
    """If an earlier attempt of this run completed its object (still in incoming/, or moved to
    rejected/ by ingest), mark the records it holds seen; True if there was one."""
    rejected = REJECTED_GENBANK_PREFIX + key[len(INCOMING_GENBANK_PREFIX) :]
    for candidate in (key, rejected):
        accessions = _accessions_in_object(s3, bucket, candidate)
        if accessions is not None:
            state.mark_seen(accessions, candidate)
            result.key, result.recovered = candidate, len(accessions)
            return True
    return False


def _accessions_in_object(s3: Any, bucket: str, key: str) -> list[str] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as err:
        if error_code(err) in ("NoSuchKey", "404"):
            return None
        raise
    try:
        return [accession_of(line) for line in _header_lines(body)]
    finally:
        body.close()


def _header_lines(body: Any) -> Iterator[bytes]:
    for line in body.iter_lines(chunk_size=1024 * 1024):
        if line.startswith(b">"):
            yield line


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()
