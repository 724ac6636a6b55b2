"""FASTQ tiles for tests: whole records through the Lambda's own tile writer, and tile names
parsed back (the production reader, training_job/sequence_data.py, has its own parser)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pipeline.dna_alphabet import INVALID_BYTE, WHITESPACE, normalize_bases
from pipeline.ingest.fastq_tiles import TILE_LEN, FastqTileWriter


def tile_name(record_id: str, start: int, end: int) -> str:
    return f"{record_id}:{start}-{end}"


def parse_tile_name(name: str) -> tuple[str, int, int]:
    """`'chr1:0-10000'` -> `('chr1', 0, 10000)`; record ids may themselves contain ':'."""
    record_id, sep, span = name.rpartition(":")
    start, dash, end = span.partition("-")
    if not sep or not dash or not record_id:
        raise ValueError(f"{name!r} is not a tile name '<record_id>:<start>-<end>'")
    return record_id, int(start), int(end)


def record_to_fastq(record_id: str, sequence: bytes | str, tile_len: int = TILE_LEN) -> bytes:
    """One whole FASTA record -> its FASTQ tiles, as the ingest Lambda writes them.

    Raises ValueError naming the first non-nucleotide character.
    """
    raw = sequence.encode() if isinstance(sequence, str) else sequence
    bases = normalize_bases(raw)
    bad = bases.find(INVALID_BYTE)
    if bad >= 0:
        offender = raw.translate(None, WHITESPACE)[bad : bad + 1]
        raise ValueError(f"record {record_id!r}: {offender!r} at base {bad} is not an IUPAC nucleotide code")
    writer = FastqTileWriter(tile_len)
    writer.start_record(record_id)
    return writer.add_bases(bases) + writer.end_record()


def records_to_fastq(records: Iterable[tuple[str, bytes | str]], tile_len: int = TILE_LEN) -> Iterator[bytes]:
    """(record_id, sequence) pairs -> FASTQ bytes, one chunk per record."""
    for record_id, sequence in records:
        yield record_to_fastq(record_id, sequence, tile_len)
