"""Streaming FASTA validation/conversion (functions/ingest_fasta/fasta_stream.py)."""

from __future__ import annotations

import gzip
import random
import zlib
from pathlib import Path

import pytest

from pipeline.ingest.fasta_stream import (
    INFLATE_PIECE_BYTES,
    FastaToFastq,
    InvalidSequenceFile,
    SeenRecordIds,
    inflate_if_gzip,
)
from tests.support.fastq_tiles import parse_tile_name

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fasta"


def convert(data: bytes, chunk: int, tile_len: int = 50) -> tuple[bytes, object]:
    parser = FastaToFastq(tile_len=tile_len)
    out = b"".join(parser.feed(data[i : i + chunk]) for i in range(0, len(data), chunk))
    tail, summary = parser.finish()
    return out + tail, summary


def rejoin(fastq: bytes) -> dict[str, bytes]:
    lines = fastq.split(b"\n")
    records: dict[str, bytes] = {}
    for i in range(0, len(lines) - 1, 4):
        record_id, start, _ = parse_tile_name(lines[i][1:].decode())
        assert start == len(records.get(record_id, b""))
        records[record_id] = records.get(record_id, b"") + lines[i + 1]
    return records


def multi_record_fasta(rng: random.Random) -> tuple[bytes, dict[str, bytes]]:
    parts, expected = [], {}
    for n in range(12):
        seq = bytes(rng.choice(b"ACGTacgtNRY") for _ in range(rng.randint(1, 400)))
        width = rng.choice([7, 60, 80, 1000])
        body = b"\r\n".join(seq[i : i + width] for i in range(0, len(seq), width))
        parts.append(b">rec%d description %d\r\n%s\r\n%s" % (n, n, body, b"\r\n" if n % 3 == 0 else b""))
        expected[f"rec{n}"] = seq.upper().replace(b"R", b"N").replace(b"Y", b"N")
    return b"".join(parts), expected


@pytest.mark.parametrize("chunk", [1, 2, 3, 17, 64, 1000, 10**9])
def test_output_does_not_depend_on_how_the_input_is_chunked(chunk):
    data, expected = multi_record_fasta(random.Random(5))
    reference, _ = convert(data, 10**9)
    fastq, summary = convert(data, chunk)
    assert fastq == reference
    assert rejoin(fastq) == expected
    assert summary.records == 12 and summary.bases == sum(len(s) for s in expected.values())


def test_real_genome_with_crlf_lines_converts_exactly():
    data = (FIXTURES / "lambda_phage_NC_001416.fa").read_bytes()
    fastq, summary = convert(data, 4096, tile_len=10_000)
    header, _, body = data.partition(b"\n")
    assert summary.records == 1 and summary.bases == 48_502 and summary.lines == data.count(b"\n")
    assert rejoin(fastq) == {header[1:].split()[0].decode(): body.replace(b"\r\n", b"").upper()}


def test_a_problem_late_in_the_file_is_reported_with_its_line_across_chunks():
    good = b">chr1\n" + b"ACGT" * 15 + b"\n"
    data = good * 1 + b"".join(b"ACGTACGT\n" for _ in range(999)) + b"ACGTXACGT\n"
    with pytest.raises(InvalidSequenceFile) as raised:
        convert(data, 13)
    assert raised.value.line == 1002 and "'X' (column 5)" in raised.value.problem
    assert "protein" in raised.value.problem


@pytest.mark.parametrize(
    ("data", "line", "fragment"),
    [
        (b">a\nACGT\n\n>b desc\n\n", 4, "record 'b' has no sequence"),
        (b">a\nAC\n>\nAC\n", 3, "header '>' has no record id"),
        (b"\n\n;comment\n>a\nAC\n", 3, "expected a FASTA header"),
        (b">a\nAC-GT\n", 2, "gap character '-'"),
        (b">a\nACGT\n>b\nAC\n>a x\nGG\n", 5, "record id 'a' appears twice"),
        (b">a \xff\xfe\nAC\n", 1, "header is not UTF-8 text"),
        (b"LOCUS       NC_001416  48502 bp    DNA\n", 1, "GenBank flat file; name it .gb"),
        (b"ID   AE017046; SV 1; circular; genomic DNA\n", 1, "EMBL flat file; name it .embl"),
    ],
)
def test_invalid_input_names_the_line_and_the_problem(data, line, fragment):
    with pytest.raises(InvalidSequenceFile) as raised:
        convert(data, 5)
    assert raised.value.line == line
    assert fragment in str(raised.value)


def test_gzip_members_are_inflated_in_bounded_pieces():
    plain = b">a\n" + b"ACGT" * (3 * INFLATE_PIECE_BYTES // 4) + b"\n"
    two_members = gzip.compress(plain[:1000]) + gzip.compress(plain[1000:])
    raw_chunks = [two_members[i : i + 65536] for i in range(0, len(two_members), 65536)]
    pieces = list(inflate_if_gzip(raw_chunks))
    assert b"".join(pieces) == plain
    assert max(len(p) for p in pieces) <= INFLATE_PIECE_BYTES


def test_plain_text_passes_through_unchanged():
    assert b"".join(inflate_if_gzip([b">", b"a\nAC", b"GT\n"])) == b">a\nACGT\n"


def test_corrupt_gzip_is_reported():
    data = bytearray(gzip.compress(b">a\n" + b"ACGT" * 1000))
    data[20:40] = b"\xff" * 20
    with pytest.raises(InvalidSequenceFile, match="gzip data is corrupt"):
        list(inflate_if_gzip([bytes(data)]))


def test_truncated_gzip_is_reported():
    data = zlib.compress(b"x")  # not gzip framing: plain zlib is not FASTA either
    assert b"".join(inflate_if_gzip([data])) == data
    with pytest.raises(InvalidSequenceFile, match="truncated"):
        list(inflate_if_gzip([gzip.compress(b">a\nACGT\n" * 100)[:-10]]))


def test_seen_record_ids_stay_exact_while_the_table_grows():
    seen = SeenRecordIds()
    ids = [f"contig_{n}".encode() for n in range(50_000)]
    assert all(seen.add(i) for i in ids)
    assert not any(seen.add(i) for i in ids[::997])
    assert seen.add(b"contig_new")


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 100, 4096])
@pytest.mark.parametrize("fixture", ["phix174_windows_bom.fa", "phix174_classic_mac.fa"])
def test_byte_order_mark_and_classic_mac_line_ends_convert_like_the_plain_file(fixture, chunk):
    plain = (FIXTURES / "phix174_NC_001422.fa").read_bytes()
    expected_fastq, expected = convert(plain, 4096, tile_len=1000)

    fastq, summary = convert((FIXTURES / fixture).read_bytes(), chunk, tile_len=1000)

    assert fastq == expected_fastq
    assert (summary.records, summary.bases, summary.lines) == (1, 5386, expected.lines)
    assert summary.first_record_id == "1"


def test_classic_mac_file_reports_problems_on_the_right_line():
    with pytest.raises(InvalidSequenceFile) as raised:
        convert(b">a\rACGT\rAC\r>b\rAC-GT\r", 3)
    assert raised.value.line == 5 and "gap character '-'" in raised.value.problem


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xef\xbb\xbf", "contains no FASTA records"),
        (b"\xef\xbb\xbfACGT\n", "expected a FASTA header starting with '>' but found 'ACGT'"),
        (b">a\nAC\xef\xbb\xbfGT\n", "byte 0xef (column 3)"),
    ],
)
def test_byte_order_mark_is_dropped_only_before_the_first_header(data, problem):
    with pytest.raises(InvalidSequenceFile) as raised:
        convert(data, 2)
    assert problem in raised.value.problem


def test_a_greater_than_sign_inside_a_sequence_line_is_not_a_header():
    with pytest.raises(InvalidSequenceFile) as raised:
        convert(b">a\nAC>GT\n", 4)
    assert raised.value.line == 2 and "'>' (column 3)" in raised.value.problem
