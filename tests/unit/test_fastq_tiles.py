"""The FASTA -> FASTQ tile writer (functions/pipeline/ingest/fastq_tiles.py) keeps the tile contract of docs/contracts.md."""

from __future__ import annotations

import random

import pytest

from pipeline.dna_alphabet import INVALID_BYTE, normalize_bases
from pipeline.ingest.fastq_tiles import QUALITY_CHAR, TILE_LEN, FastqTileWriter
from tests.support.fastq_tiles import parse_tile_name, record_to_fastq, tile_name


def parse_fastq(data: bytes) -> list[tuple[str, bytes, bytes]]:
    lines = data.split(b"\n")
    assert lines[-1] == b"", "FASTQ output must end with a newline"
    lines = lines[:-1]
    assert len(lines) % 4 == 0
    reads = []
    for i in range(0, len(lines), 4):
        header, seq, plus, qual = lines[i : i + 4]
        assert header.startswith(b"@") and plus == b"+"
        reads.append((header[1:].decode(), seq, qual))
    return reads


def rejoin(reads: list[tuple[str, bytes, bytes]]) -> dict[str, bytes]:
    records: dict[str, bytearray] = {}
    for name, seq, _ in reads:
        record_id, start, end = parse_tile_name(name)
        joined = records.setdefault(record_id, bytearray())
        assert start == len(joined), f"tile {name} does not continue its record"
        assert end - start == len(seq)
        joined += seq
    return {k: bytes(v) for k, v in records.items()}


def test_tile_length_is_within_a_long_read_and_positive():
    assert 1_000 <= TILE_LEN <= 100_000


def test_tiles_are_named_half_open_and_rejoin_to_the_uppercased_record():
    sequence = b"acgtNNRYacgt" * 5 + b"A"  # 61 bases
    reads = parse_fastq(record_to_fastq("NC_1.1", sequence, tile_len=25))
    assert [name for name, _, _ in reads] == ["NC_1.1:0-25", "NC_1.1:25-50", "NC_1.1:50-61"]
    expected = sequence.upper().replace(b"R", b"N").replace(b"Y", b"N")
    assert rejoin(reads) == {"NC_1.1": expected}
    assert all(qual == QUALITY_CHAR * len(seq) for _, seq, qual in reads)


def test_every_iupac_ambiguity_code_becomes_n_and_soft_masking_is_uppercased():
    assert normalize_bases(b"RYKMSWBDHVN ryk msw\r\nbdhvn") == b"N" * 22
    assert normalize_bases(b"acgt\r\nACGT") == b"ACGTACGT"


def test_non_nucleotides_are_marked_invalid():
    for char in b"EFILPQXZ*-.>@0\x00\xff":
        assert INVALID_BYTE in normalize_bases(bytes([char])), chr(char)
    with pytest.raises(ValueError, match="'E' at base 3"):
        record_to_fastq("p", "ACGE")


def test_streamed_chunks_give_the_same_tiles_as_one_whole_record():
    rng = random.Random(7)
    sequence = bytes(rng.choice(b"ACGTN") for _ in range(10_007))
    whole = record_to_fastq("chr", sequence, tile_len=1_000)
    writer = FastqTileWriter(tile_len=1_000)
    out = writer.start_record("chr")
    pos = 0
    while pos < len(sequence):
        step = rng.randint(1, 2_500)
        out += writer.add_bases(sequence[pos : pos + step])
        pos += step
    out += writer.end_record()
    assert out == whole
    assert rejoin(parse_fastq(out)) == {"chr": sequence}


def test_consecutive_records_each_start_at_zero():
    writer = FastqTileWriter(tile_len=4)
    out = writer.start_record("a") + writer.add_bases(b"ACGTAC")
    out += writer.start_record("b") + writer.add_bases(b"GG") + writer.end_record()
    assert [n for n, _, _ in parse_fastq(out)] == ["a:0-4", "a:4-6", "b:0-2"]


def test_tile_names_round_trip_even_when_the_record_id_has_a_colon():
    assert parse_tile_name(tile_name("chr1:alt", 10, 20)) == ("chr1:alt", 10, 20)
    with pytest.raises(ValueError):
        parse_tile_name("no-span-here")
