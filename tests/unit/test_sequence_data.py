"""The training data pipeline (training_job/sequence_data.py): reading, rejoining, splitting, windows."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest

from hyenadna import encode_dna
from sequence_data import (
    IGNORE_INDEX,
    PAD_ID,
    SequenceDataError,
    SequenceRecord,
    WindowCorpus,
    load_records,
)

REPO = Path(__file__).resolve().parents[2]
LAMBDA_FASTA = REPO / "data" / "lambda_phage_NC_001416.fa"
FASTA_FIXTURES = REPO / "tests" / "fixtures" / "fasta"


def lambda_bases() -> bytes:
    lines = LAMBDA_FASTA.read_bytes().split(b"\r\n")
    assert lines[0].startswith(b">")
    return b"".join(lines[1:])


def fastq_tile(record_id: str, start: int, bases: bytes) -> bytes:
    return b"@%s:%d-%d\n%s\n+\n%s\n" % (
        record_id.encode(),
        start,
        start + len(bases),
        bases,
        b"I" * len(bases),
    )


def record(record_id: str, bases: bytes) -> SequenceRecord:
    return SequenceRecord(record_id, encode_dna(bases).astype(np.uint8), "test")


def test_crlf_fasta_loads_the_exact_genome_as_tokens():
    (genome,) = load_records(LAMBDA_FASTA)
    assert genome.record_id == "gi|9626243|ref|NC_001416.1|"
    assert len(genome.tokens) == 48_502
    np.testing.assert_array_equal(genome.tokens, encode_dna(lambda_bases()))


def test_gzip_fasta_is_detected_by_content_and_reads_like_plain(tmp_path):
    packed = tmp_path / "genome.fasta"  # gzip content under a plain name
    packed.write_bytes(gzip.compress(LAMBDA_FASTA.read_bytes()))
    np.testing.assert_array_equal(load_records(packed)[0].tokens, load_records(LAMBDA_FASTA)[0].tokens)


def test_soft_masked_bases_are_uppercased_and_ambiguity_codes_become_n(tmp_path):
    fasta = tmp_path / "x.fa"
    fasta.write_bytes(b">r1 desc\nacgtRYkm\nAC GT\n>r2\nNNa\n")
    records = load_records(fasta)
    assert [r.record_id for r in records] == ["r1", "r2"]
    np.testing.assert_array_equal(records[0].tokens, encode_dna(b"ACGTNNNNACGT"))
    np.testing.assert_array_equal(records[1].tokens, encode_dna(b"NNA"))


def test_non_dna_character_fails_naming_file_line_and_column(tmp_path):
    fasta = tmp_path / "bad.fa"
    fasta.write_bytes(b">r1\r\nACGT\r\nACJT\r\n")
    with pytest.raises(SequenceDataError, match=r"bad\.fa: line 3, column 3: b'J' is not a nucleotide"):
        load_records(fasta)


def test_protein_fasta_fixture_is_rejected():
    with pytest.raises(SequenceDataError, match=r"protein\.fa: line \d+, column \d+"):
        load_records(FASTA_FIXTURES / "protein.fa")


def test_empty_file_fails_naming_it(tmp_path):
    (tmp_path / "reads").mkdir()
    (tmp_path / "reads" / "empty.fastq.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(SequenceDataError, match=r"empty\.fastq\.gz: file is empty"):
        load_records(tmp_path)


def test_truncated_gzip_fails_naming_file_and_line(tmp_path):
    whole = gzip.compress(b"".join(fastq_tile("r", i * 100, b"ACGT" * 25) for i in range(2000)))
    truncated = tmp_path / "cut.fastq.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SequenceDataError, match=r"cut\.fastq\.gz: line \d+: gzip stream is truncated"):
        load_records(truncated)


def test_text_that_is_neither_fasta_nor_fastq_fails_on_line_1(tmp_path):
    (tmp_path / "notes.fa").write_text("hello\n")
    with pytest.raises(SequenceDataError, match=r"notes\.fa: line 1: starts with b'h'"):
        load_records(tmp_path)


def test_tiles_spread_over_read_set_folders_rejoin_exactly_in_any_order(tmp_path, caplog):
    bases = lambda_bases()[:25_000]
    tiles = [
        fastq_tile("NC_001416.1", start, bases[start : start + 3000]) for start in range(0, 25_000, 3000)
    ]
    first, second = tmp_path / "readSet" / "111", tmp_path / "readSet" / "222"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    (first / "a_1.fastq.gz").write_bytes(gzip.compress(b"".join(tiles[5:] + tiles[:2])))
    (second / "b_1.fastq").write_bytes(b"".join(reversed(tiles[2:5])))
    (second / "manifest.json").write_text("{}")
    with caplog.at_level(logging.INFO):
        (joined,) = load_records(tmp_path)
    assert joined.record_id == "NC_001416.1"
    np.testing.assert_array_equal(joined.tokens, encode_dna(bases))
    assert "ignored 1 files" in caplog.text


def test_missing_tile_fails_naming_the_record_and_the_gap(tmp_path):
    (tmp_path / "r.fastq").write_bytes(fastq_tile("chr9", 0, b"ACGT") + fastq_tile("chr9", 8, b"ACGT"))
    with pytest.raises(SequenceDataError, match=r"record 'chr9': bases 4-8 are missing"):
        load_records(tmp_path)


def test_overlapping_tile_fails_naming_the_record_and_both_files(tmp_path):
    (tmp_path / "a.fastq").write_bytes(fastq_tile("chr9", 0, b"ACGTAC"))
    (tmp_path / "b.fastq").write_bytes(fastq_tile("chr9", 4, b"GGGG"))
    with pytest.raises(SequenceDataError, match=r"record 'chr9': tile 4-8 at .*b\.fastq:1 overlaps tile 0-6"):
        load_records(tmp_path)


def test_exact_duplicate_tiles_are_dropped_and_counted(tmp_path, caplog):
    tile = fastq_tile("chr9", 0, b"ACGTAC")
    (tmp_path / "a.fastq").write_bytes(tile)
    (tmp_path / "b.fastq").write_bytes(tile + fastq_tile("chr9", 6, b"TT"))
    with caplog.at_level(logging.WARNING):
        (joined,) = load_records(tmp_path)
    np.testing.assert_array_equal(joined.tokens, encode_dna(b"ACGTACTT"))
    assert "dropped 1 duplicate FASTQ tiles" in caplog.text


def test_read_name_outside_the_tile_contract_fails_naming_the_line(tmp_path):
    (tmp_path / "r.fastq").write_bytes(fastq_tile("chr1", 0, b"ACGT") + b"@SRR001.1\nACGT\n+\nIIII\n")
    with pytest.raises(SequenceDataError, match=r"r\.fastq: line 5: read name 'SRR001.1' is not"):
        load_records(tmp_path)


def test_truncated_fastq_read_fails_naming_the_line(tmp_path):
    (tmp_path / "r.fq").write_bytes(fastq_tile("chr1", 0, b"ACGT") + b"@chr1:4-8\nACGT\n")
    with pytest.raises(SequenceDataError, match=r"r\.fq: line 5: FASTQ read is truncated"):
        load_records(tmp_path)


def test_batch_of_a_step_is_the_same_on_every_call_and_differs_between_steps():
    corpus = WindowCorpus([record("r", lambda_bases())], max_length=256, val_fraction=0.05)
    first = corpus.train_windows(7, 16, seed=3, rc_probability=0.5)
    np.testing.assert_array_equal(first, corpus.train_windows(7, 16, seed=3, rc_probability=0.5))
    assert not np.array_equal(first, corpus.train_windows(8, 16, seed=3, rc_probability=0.5))


def test_gathered_windows_are_the_genome_slices_and_reverse_complement_when_flagged():
    bases = lambda_bases()
    corpus = WindowCorpus([record("r", bases)], max_length=32, val_fraction=0.0)
    input_ids, labels = corpus.gather(np.array([[100, 32, 0], [100, 32, 1]]))
    np.testing.assert_array_equal(input_ids[0], encode_dna(bases[100:132]))
    complement = bytes.maketrans(b"ACGT", b"TGCA")
    np.testing.assert_array_equal(input_ids[1], encode_dna(bases[100:132].translate(complement)[::-1]))
    np.testing.assert_array_equal(labels, input_ids)


def test_record_shorter_than_the_window_gives_a_padded_window_with_ignored_labels():
    corpus = WindowCorpus([record("short", b"ACGTACGTAC")], max_length=16, val_fraction=0.0)
    windows = corpus.train_windows(0, 4, seed=0, rc_probability=0.0)
    assert windows[:, :2].tolist() == [[0, 10]] * 4
    input_ids, labels = corpus.gather(windows)
    assert (input_ids[:, 10:] == PAD_ID).all() and (labels[:, 10:] == IGNORE_INDEX).all()
    np.testing.assert_array_equal(input_ids[0, :10], encode_dna(b"ACGTACGTAC"))


def test_reverse_complement_of_a_padded_window_keeps_padding_at_the_end():
    corpus = WindowCorpus([record("short", b"AACCG")], max_length=8, val_fraction=0.0)
    input_ids, _ = corpus.gather(np.array([[0, 5, 1]]))
    np.testing.assert_array_equal(input_ids[0], np.concatenate([encode_dna(b"CGGTT"), [PAD_ID] * 3]))
