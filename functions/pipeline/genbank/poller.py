"""Poll GenBank for new or updated sequences and drop each as incoming/genbank/<accession.version>.fa.

State in the pipeline's state table (pipeline.state_table.GenbankPollState):
- per query, `window_end`: the end of the last modification-date window that was fetched
  completely. The next window starts there (E-utilities dates are whole days, so consecutive
  windows overlap by a day; the seen-items below absorb the overlap).
- per accession.version, a seen-item: this version was written to S3.

Progress is recorded only after the writes: each seen-item after its S3 object, the window end
after every record of the window is in S3. A run that stops early (error, or the per-run cap)
leaves the window where it was, and the next run skips what is already there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.dependencies import Dependencies
from pipeline.genbank.eutils import EutilsClient, EutilsError
from pipeline.genbank.settings import PollSettings
from pipeline.state_table import GenbankPollState

INCOMING_GENBANK_PREFIX = "incoming/genbank/"
# accession.version, e.g. NC_001416.1, MN908947.3, NZ_CP012345.1, AAAA02000001.1
ACCESSION_VERSION = re.compile(r"^[A-Z]{1,6}_?[A-Z]{0,4}[0-9]+\.[0-9]+$")


@dataclass(frozen=True)
class PollConfig:
    db: str
    query: str
    batch_size: int
    max_records_per_run: int
    initial_lookback_days: int

    @classmethod
    def from_settings(cls, settings: PollSettings) -> PollConfig:
        return cls(
            db=settings.genbank_db,
            query=settings.genbank_query,
            batch_size=settings.genbank_batch_size,
            max_records_per_run=settings.genbank_max_records_per_run,
            initial_lookback_days=settings.genbank_initial_lookback_days,
        )


@dataclass
class PollResult:
    window_start: str
    window_end: str
    found: int = 0
    written: int = 0
    skipped_seen: int = 0
    skipped_without_accession: list[str] = field(default_factory=list)  # headers we could not name a file by
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
        return poll_genbank(
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
    search = eutils.esearch(config.db, config.query, _day(start), _day(now))
    result.found = search.count
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
            if state.is_seen(accession):
                result.skipped_seen += 1
                continue
            if result.written >= config.max_records_per_run:
                return result  # cap reached: window not advanced, the next run continues
            key = f"{INCOMING_GENBANK_PREFIX}{accession}.fa"
            s3.put_object(Bucket=bucket, Key=key, Body=record, ContentType="text/x-fasta")
            state.mark_seen(accession, key)
            result.written += 1
    state.record_window_end(now, result.written)
    result.complete = True
    return result


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()
