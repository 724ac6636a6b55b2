"""FASTA -> FASTQ tiles: the contract between ingestion (writer, here) and training (reader).

One FASTA record becomes consecutive FASTQ reads ("tiles") of at most `TILE_LEN` bases named
`<record_id>:<start>-<end>` (0-based, half-open), so the reader can rejoin the record exactly:

    @NC_001416.1:0-10000
    GGGCGGCGACCT...            (uppercase; IUPAC ambiguity codes written as N: pipeline.dna_alphabet)
    +
    IIIIIIIIIIII...            (constant quality: the bases are assembled sequence, not calls)

Why a tile length at all: HealthOmics sequence stores take unaligned data only as FASTQ (gzip),
i.e. as reads, and a whole chromosome is not a read. `TILE_LEN` is kept far below the read
lengths that HealthOmics documents for long-read FASTQ/uBAM imports (ONT/PacBio reads of tens to
hundreds of kilobases; see "Importing read sets into a HealthOmics sequence store" and "HealthOmics
service quotas", docs.aws.amazon.com/omics/latest/dev/). The quotas page in our reference corpus
did not show a read-length figure, so we stay at 10,000 bases: the length of a typical long read,
large enough that per-tile overhead is ~0.3 % and small enough for any FASTQ tool.

Pure stdlib: the Lambdas carry only boto3/powertools, and the hot path here is C-level slicing
and joining over whole chunks, never per-character Python. The reader is
training_job/sequence_data.py.
"""

from __future__ import annotations

TILE_LEN = 10_000
QUALITY_CHAR = b"I"  # Phred 40 in Sanger/Illumina 1.8+ encoding; constant for every base.


def _fastq_tile(header_prefix: bytes, start: int, bases: bytes) -> bytes:
    end = start + len(bases)
    return b"".join(
        (header_prefix, b"%d-%d\n" % (start, end), bases, b"\n+\n", QUALITY_CHAR * len(bases), b"\n")
    )


class FastqTileWriter:
    """Turns a stream of normalized bases per record into FASTQ tile bytes.

    Feed it `start_record(id)`, any number of `add_bases(chunk)` (already normalized, see
    `pipeline.dna_alphabet.normalize_bases`), then `end_record()`; each call returns the FASTQ
    bytes that became complete.
    Memory: at most one partial tile plus the chunk passed in.
    """

    def __init__(self, tile_len: int = TILE_LEN) -> None:
        if tile_len < 1:
            raise ValueError("tile_len must be positive")
        self.tile_len = tile_len
        self._full_quality = QUALITY_CHAR * tile_len
        self._header_prefix = b""
        self._pending = b""  # bases of the current record not yet written (< tile_len)
        self._next_start = 0  # record coordinate of the first pending base
        self.record_open = False
        self.bases_in_record = 0

    def start_record(self, record_id: str) -> bytes:
        flushed = self.end_record() if self.record_open else b""
        self._header_prefix = b"@" + record_id.encode() + b":"
        self._pending = b""
        self._next_start = 0
        self.bases_in_record = 0
        self.record_open = True
        return flushed

    def add_bases(self, bases: bytes) -> bytes:
        if not self.record_open:
            raise RuntimeError("add_bases() before start_record()")
        self.bases_in_record += len(bases)
        tile_len = self.tile_len
        if len(self._pending) + len(bases) < tile_len:
            self._pending += bases
            return b""
        # One flat list of pieces and a single join: tiles are memoryview slices of `bases`,
        # so each base is copied once, into the output (the hot path of ingestion).
        prefix, start, quality = self._header_prefix, self._next_start, self._full_quality
        parts: list[bytes | memoryview] = []
        offset = 0
        if self._pending:
            offset = tile_len - len(self._pending)
            first = self._pending + bases[:offset]
            parts += (prefix, b"%d-%d\n" % (start, start + tile_len), first, b"\n+\n", quality, b"\n")
            start += tile_len
        view = memoryview(bases)
        full_end = offset + (len(bases) - offset) // tile_len * tile_len
        for tile_start in range(offset, full_end, tile_len):
            parts += (
                prefix,
                b"%d-%d\n" % (start, start + tile_len),
                view[tile_start : tile_start + tile_len],
                b"\n+\n",
                quality,
                b"\n",
            )
            start += tile_len
        self._next_start = start
        self._pending = bases[full_end:]
        return b"".join(parts)

    def end_record(self) -> bytes:
        """Flush the last (short) tile of the current record."""
        out = _fastq_tile(self._header_prefix, self._next_start, self._pending) if self._pending else b""
        self._next_start += len(self._pending)
        self._pending = b""
        self.record_open = False
        return out
