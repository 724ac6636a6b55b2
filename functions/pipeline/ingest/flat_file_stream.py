"""GenBank/EMBL flat files (plain or gzip) -> the same FASTQ tiles FASTA becomes, record by record.

The records come from `pipeline.sequence_files.read_flat_file` (Biopython's INSDC scanner, which
imports Biopython on the first flat file only); each record's letters are checked against the one
alphabet and tiled by the same FastqTileWriter as FASTA, in slices, so memory is one record plus a
slice of FASTQ. What the records say about themselves (organism, taxonomy id, molecule type) goes
into the summary, for the read set's description and tags.

Biopython parses line by line in Python (~10-20 MB/s): fine for annotated flat files, which are
genomes of kilobases to a few megabases; FASTA keeps its own faster parser (fasta_stream.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from pipeline.dna_alphabet import INVALID_BYTE, normalize_bases
from pipeline.ingest.fasta_stream import InvalidSequenceFile, SeenRecordIds, SequenceSummary, bad_base
from pipeline.ingest.fastq_tiles import TILE_LEN, FastqTileWriter
from pipeline.sequence_files import FLAT_FILE_FORMATS, FlatFileError, read_flat_file, text_lines

SLICE_BASES = 1 << 20  # bases handed to the tile writer at a time


class FlatFileToFastq:
    """`fastq(chunks)` yields FASTQ tile bytes (whole reads) for the decoded flat file; `summary`
    is set once it is exhausted. Raises InvalidSequenceFile naming the line of a problem."""

    def __init__(self, file_format: str, tile_len: int = TILE_LEN) -> None:
        self.file_format = file_format
        self.kind = FLAT_FILE_FORMATS[file_format]
        self._writer = FastqTileWriter(tile_len)
        self.summary: SequenceSummary | None = None

    def fastq(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        seen = SeenRecordIds()
        records = bases = 0
        first_record_id = ""
        organisms: dict[str, None] = {}  # dicts as ordered sets
        taxonomy_ids: dict[str, None] = {}
        molecule_types: dict[str, None] = {}
        raw = _ChunkStream(chunks)
        text = text_lines(io.BufferedReader(raw, 1 << 20))
        try:
            for record in read_flat_file(text, self.file_format):
                if not seen.add(record.record_id.encode()):
                    raise InvalidSequenceFile(
                        f"record id {record.record_id!r} appears twice in this file",
                        "give every record a unique accession.version",
                        record.line,
                    )
                normalized = normalize_bases(record.sequence)
                bad = normalized.find(INVALID_BYTE)
                if bad >= 0:
                    problem, action = bad_base(record.sequence[bad], f"base {bad + 1}", record.record_id)
                    raise InvalidSequenceFile(problem, action, record.line_of_base(bad))
                yield self._writer.start_record(record.record_id)
                for start in range(0, len(normalized), SLICE_BASES):
                    yield self._writer.add_bases(normalized[start : start + SLICE_BASES])
                yield self._writer.end_record()
                records, bases = records + 1, bases + len(normalized)
                first_record_id = first_record_id or record.record_id
                for values, value in (
                    (organisms, record.organism),
                    (taxonomy_ids, record.taxonomy_id),
                    (molecule_types, record.molecule_type),
                ):
                    if value:
                        values[value] = None
        except FlatFileError as error:
            raise InvalidSequenceFile(error.problem, error.action, error.line) from None
        self.summary = SequenceSummary(
            records=records,
            bases=bases,
            lines=raw.line_feeds,
            first_record_id=first_record_id,
            file_format=self.kind,
            organisms=tuple(organisms),
            taxonomy_ids=tuple(taxonomy_ids),
            molecule_types=tuple(molecule_types),
        )


class _ChunkStream(io.RawIOBase):
    """An iterator of byte chunks (the inflated S3 body) as a readable raw stream."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self.line_feeds = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        while not self._pending:
            chunk = next(self._chunks, b"")
            if not chunk:
                return 0
            self.line_feeds += chunk.count(b"\n")
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
