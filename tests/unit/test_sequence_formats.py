"""What `train.py --data` reads (training_job/sequence_data.py over sequence_files.py): every file is
judged by its content, FASTA in any line-end convention, GenBank and EMBL flat files, the same
inputs ingest accepts; non-sequence files are skipped, and problems name file and line."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest

from hyenadna import encode_dna
from sequence_data import SequenceDataError, load_records
from sequence_files import format_from_name, sniff_format

REPO = Path(__file__).resolve().parents[2]
FASTA = REPO / "tests" / "fixtures" / "fasta"
FLAT = REPO / "tests" / "fixtures" / "flatfiles"


def sequence_block(flat_file: Path) -> bytes:
    """The letters of a flat file's ORIGIN / SQ block, uppercased."""
    lines = flat_file.read_bytes().split(b"\n")
    start = next(i for i, line in enumerate(lines) if line.startswith((b"ORIGIN", b"SQ   ")))
    end = lines.index(b"//", start)
    return bytes(c for line in lines[start + 1 : end] for c in line if chr(c).isalpha()).upper()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b">chr1\nACGT", "fasta"),
        (b"\xef\xbb\xbf>chr1\r\n", "fasta"),
        (b"\n\n>chr1", "fasta"),
        (b"@r:0-4\nACGT\n+\nIIII\n", "fastq"),
        (b"LOCUS       NC_005816    9609 bp", "genbank"),
        (b"ID   AE017046; SV 1; circular", "embl"),
        (b'{"readSet": "1234567890"}', None),
        (b"BAI\x01\x00\x00", None),
        (b"", None),
    ],
)
def test_format_is_told_by_the_first_bytes(head, expected):
    assert sniff_format(head) == expected


def test_names_are_only_hints():
    assert [format_from_name(n) for n in ("a.fa.gz", "x/b.GBFF", "c.embl", "source1", "d.fastq")] == [
        "fasta",
        "genbank",
        "embl",
        None,
        "fastq",
    ]


@pytest.mark.parametrize("fixture", ["phix174_windows_bom.fa", "phix174_classic_mac.fa"])
def test_byte_order_mark_and_classic_mac_line_ends_load_like_the_plain_file(fixture):
    (plain,) = load_records(FASTA / "phix174_NC_001422.fa")
    (loaded,) = load_records(FASTA / fixture)
    assert loaded.record_id == plain.record_id == "1" and len(loaded.tokens) == 5_386
    np.testing.assert_array_equal(loaded.tokens, plain.tokens)


def test_classic_mac_file_reports_a_bad_base_on_its_line(tmp_path):
    (tmp_path / "mac.fa").write_bytes(b">a\rACGT\rAC\r>b\rACJT\r")
    with pytest.raises(SequenceDataError, match=r"mac\.fa: line 5, column 3: b'J' is not a nucleotide"):
        load_records(tmp_path / "mac.fa")


@pytest.mark.parametrize(
    ("fixture", "record_id"), [("NC_005816.gb", "NC_005816.1"), ("AE017046.embl", "AE017046.1")]
)
def test_genbank_and_embl_flat_files_load_their_sequence(tmp_path, fixture, record_id):
    expected = sequence_block(FLAT / fixture)
    packed = tmp_path / f"{fixture}.gz"
    packed.write_bytes(gzip.compress((FLAT / fixture).read_bytes()))

    for source in (FLAT / fixture, packed):
        (record,) = load_records(source)
        assert record.record_id == record_id and len(record.tokens) == 9_609
        np.testing.assert_array_equal(record.tokens, encode_dna(expected))


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("truncated.gb", r"truncated\.gb: line 400: record 'NC_005816\.1' ends without its '//' line"),
        ("bad_base.embl", r"bad_base\.embl: line 331: base 125 of record 'AE017046\.1' is b'X'"),
        ("contig_only.gb", r"contig_only\.gb: line 1: record 'NC_005816\.1' has no sequence"),
    ],
)
def test_bad_flat_files_fail_naming_file_and_line(fixture, message):
    with pytest.raises(SequenceDataError, match=message):
        load_records(FLAT / fixture)


def test_read_set_files_without_extensions_are_read_by_content_and_other_files_skipped(tmp_path, caplog):
    read_set = tmp_path / "readSet" / "1234567890"
    read_set.mkdir(parents=True)
    tiles = b"@NC_001422.1:0-8\nGAGTTTTA\n+\nIIIIIIII\n@NC_001422.1:8-12\nTCGC\n+\nIIII\n"
    (read_set / "source1").write_bytes(gzip.compress(tiles))  # a name with no extension at all
    (read_set / "index").write_bytes(b"BAI\x01" + bytes(60))  # binary, not a sequence
    (tmp_path / "import-manifest.json").write_text('{"readSets": 1}')
    (tmp_path / "genome").write_bytes((FLAT / "NC_005816.gb").read_bytes())

    with caplog.at_level(logging.INFO):
        records = {r.record_id: r for r in load_records(tmp_path)}

    assert sorted(records) == ["NC_001422.1", "NC_005816.1"]
    np.testing.assert_array_equal(records["NC_001422.1"].tokens, encode_dna(b"GAGTTTTATCGC"))
    assert "ignored 2 files that are not FASTA, FASTQ, GenBank or EMBL" in caplog.text


def test_a_file_named_as_a_sequence_or_given_alone_must_be_one(tmp_path):
    (tmp_path / "notes").write_text("hello\n")
    with pytest.raises(SequenceDataError, match=r"notes: line 1: starts with b'h', expected '>' \(FASTA\)"):
        load_records(tmp_path / "notes")
    (tmp_path / "notes").unlink()
    (tmp_path / "empty.gb").write_bytes(b"")
    with pytest.raises(SequenceDataError, match=r"empty\.gb: file is empty"):
        load_records(tmp_path)
