"""Poll GenBank for new or updated sequences and drop each as incoming/genbank/<accession.version>.fa.

State in the pipeline's DynamoDB table (keys pk/sk):
- `pk="genbank#poll"`, `sk="query#<hash of db+query>"`: `window_end`, the end of the last modification-
  date window that was fetched completely. The next window starts there (E-utilities dates are
  whole days, so consecutive windows overlap by a day; the seen-items below absorb the overlap).
- `pk="genbank#accession#<accession.version>"`, `sk="ingested"`: this version was written to S3.

Progress is recorded only after the writes: each seen-item after its S3 object, the window end
after every record of the window is in S3. A run that stops early (error, or the per-run cap)
leaves the window where it was, and the next run skips what is already there.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from poll_genbank.eutils import EutilsClient

INCOMING_GENBANK_PREFIX = "incoming/genbank/"
POLL_PK = "genbank#poll"
# accession.version, e.g. NC_001416.1, MN908947.3, NZ_CP012345.1, AAAA02000001.1
ACCESSION_VERSION = re.compile(r"^[A-Z]{1,6}_?[A-Z]{0,4}[0-9]+\.[0-9]+$")


@dataclass(frozen=True)
class PollConfig:
    db: str
    query: str
    batch_size: int
    max_records_per_run: int
    initial_lookback_days: int


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


class GenbankState:
    """The poller's items in the state table (plain DynamoDB client, no resource layer)."""

    def __init__(self, dynamodb: Any, table: str, config: PollConfig) -> None:
        self._db, self._table = dynamodb, table
        digest = hashlib.sha256(f"{config.db}\n{config.query}".encode()).hexdigest()[:16]
        self._poll_key = {"pk": {"S": POLL_PK}, "sk": {"S": f"query#{digest}"}}
        self._query = config.query

    def window_end(self) -> datetime | None:
        item = self._db.get_item(TableName=self._table, Key=self._poll_key, ConsistentRead=True).get("Item")
        return datetime.fromisoformat(item["window_end"]["S"]) if item else None

    def record_window_end(self, end: datetime, written: int) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                **self._poll_key,
                "window_end": {"S": end.isoformat()},
                "query": {"S": self._query},
                "records_written": {"N": str(written)},
                "updated_at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
            },
        )

    def is_seen(self, accession: str) -> bool:
        response = self._db.get_item(
            TableName=self._table,
            Key=self._seen_key(accession),
            ProjectionExpression="pk",
            ConsistentRead=True,
        )
        return "Item" in response

    def mark_seen(self, accession: str, key: str) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                **self._seen_key(accession),
                "s3_key": {"S": key},
                "ingested_at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
            },
        )

    @staticmethod
    def _seen_key(accession: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"genbank#accession#{accession}"}, "sk": {"S": "ingested"}}


def poll_genbank(
    *,
    now: datetime,
    config: PollConfig,
    eutils: EutilsClient,
    state: GenbankState,
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
