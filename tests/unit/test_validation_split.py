"""The validation split (training_job/sequence_data.py, docs/contracts.md "Validation split"): one
held-out set that only grows. Old data's held-out blocks never move when new data arrives, a
genome holds out the same blocks as FASTA and as ingest's FASTQ tiles, and no training window
touches a held-out base."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from hyenadna import encode_dna
from pipeline.ingest.fasta_stream import FastaToFastq
from sequence_data import (
    SPLIT_BLOCK_BASES,
    SequenceRecord,
    WindowCorpus,
    held_out_blocks,
    load_records,
)

REPO = Path(__file__).resolve().parents[2]
LAMBDA = REPO / "data" / "lambda_phage_NC_001416.fa"
PHIX = REPO / "data" / "phix174_NC_001422.fa"
LAMBDA_ID, PHIX_ID = "gi|9626243|ref|NC_001416.1|", "1"


def held_out_bases(corpus: WindowCorpus) -> dict[str, list[tuple[int, bytes]]]:
    """record id -> [(start in record, the held-out bases as token bytes)], in record order."""
    found: dict[str, list[tuple[int, bytes]]] = {}
    for start, end in corpus.val_spans.tolist():
        record = int(corpus.record_index(np.array([start]))[0])
        offset = int(corpus.record_starts[record])
        found.setdefault(corpus.record_ids[record], []).append(
            (start - offset, corpus.tokens[start:end].tobytes())
        )
    return found


def write_tiles(genome: Path, folder: Path) -> None:
    """The genome as ingest stages it: FASTQ tiles (gzip) from the Lambda's own streaming converter."""
    converter = FastaToFastq()
    tiles = converter.feed(genome.read_bytes()) + converter.finish()[0]
    folder.mkdir(parents=True)
    (folder / f"{genome.stem}.fastq.gz").write_bytes(gzip.compress(tiles))


def test_held_out_blocks_follow_the_documented_sha256_rule():
    # The rule in docs/contracts.md, written out independently: block i of a record is held out when
    # the first 8 bytes of sha256("block\t<record_id>\t<i>") (big-endian) / 2**64 < val_fraction.
    def documented(record_id: str, length: int, val_fraction: float) -> list[int]:
        blocks = -(-length // 1024)
        draws = [
            int.from_bytes(hashlib.sha256(f"block\t{record_id}\t{i}".encode()).digest()[:8], "big") / 2**64
            for i in range(blocks)
        ]
        held = [i for i in range(blocks) if draws[i] < val_fraction]
        return held or ([min(range(length // 1024), key=draws.__getitem__)] if blocks >= 2 else [])

    assert SPLIT_BLOCK_BASES == 1024
    for record_id, length in ((LAMBDA_ID, 48_502), (PHIX_ID, 5_386), ("chr1", 2_000_000), ("x", 1_025)):
        for val_fraction in (0.01, 0.05, 0.2):
            assert held_out_blocks(record_id, length, val_fraction) == documented(
                record_id, length, val_fraction
            )
    # Pinned: changing the rule moves every held-out block (a new evaluation set), so it must be deliberate.
    assert held_out_blocks(LAMBDA_ID, 48_502, 0.05) == [16]
    assert held_out_blocks(PHIX_ID, 5_386, 0.05) == [3]


def test_adding_a_new_genome_leaves_the_old_held_out_set_byte_identical(tmp_path):
    (tmp_path / "before").mkdir()
    shutil.copy(LAMBDA, tmp_path / "before")
    (tmp_path / "after").mkdir()
    shutil.copy(LAMBDA, tmp_path / "after")
    shutil.copy(PHIX, tmp_path / "after" / "aaa_phix.fa")  # sorts first: the new genome comes before the old
    before = WindowCorpus(load_records(tmp_path / "before"), max_length=1024, val_fraction=0.05)
    after = WindowCorpus(load_records(tmp_path / "after"), max_length=1024, val_fraction=0.05)

    assert after.record_ids == [PHIX_ID, LAMBDA_ID]
    assert held_out_bases(after)[LAMBDA_ID] == held_out_bases(before)[LAMBDA_ID]
    assert held_out_bases(before)[LAMBDA_ID] == [
        (16 * 1024, load_records(LAMBDA)[0].tokens[16384:17408].tobytes())
    ]
    # ... and the new genome brings its own share: the evaluation set only grows.
    assert set(held_out_bases(after)) == {LAMBDA_ID, PHIX_ID}
    assert after.val_tokens == before.val_tokens + 1024


def test_a_genome_holds_out_the_same_blocks_as_fasta_and_as_ingest_tiles(tmp_path):
    write_tiles(LAMBDA, tmp_path / "tiles" / "readSet" / "1000000001")
    write_tiles(PHIX, tmp_path / "tiles" / "readSet" / "1000000002")
    from_tiles = WindowCorpus(load_records(tmp_path / "tiles"), max_length=1024, val_fraction=0.05)
    from_fasta = WindowCorpus(load_records(LAMBDA) + load_records(PHIX), max_length=1024, val_fraction=0.05)

    assert held_out_bases(from_tiles) == held_out_bases(from_fasta)
    assert len(held_out_bases(from_tiles)) == 2


def test_no_training_window_touches_a_held_out_base():
    records = load_records(LAMBDA) + load_records(PHIX)
    for max_length in (1024, 300):
        corpus = WindowCorpus(records, max_length=max_length, val_fraction=0.05)
        held_out = np.zeros(len(corpus.tokens), dtype=bool)
        for start, end in corpus.val_spans.tolist():
            held_out[start:end] = True
        covered = np.zeros(len(corpus.tokens), dtype=np.int64)
        for step in range(200):
            for start, length, _ in corpus.train_windows(step, 32, seed=0, rc_probability=0.5).tolist():
                covered[start : start + length] += 1
        assert not covered[held_out].any()
        assert (covered[~held_out] > 0).mean() > 0.99  # every other base is trained on


def test_held_out_blocks_do_not_depend_on_the_window_length():
    records = load_records(LAMBDA) + load_records(PHIX)
    spans = {
        max_length: WindowCorpus(records, max_length, val_fraction=0.05).val_spans.tolist()
        for max_length in (64, 1000, 4096)
    }
    assert spans[64] == spans[1000] == spans[4096]


def test_every_record_longer_than_one_block_holds_out_at_least_one_full_block():
    # phiX174: no block's hash falls under 5 %, so its full block with the smallest hash is held out.
    assert held_out_blocks(PHIX_ID, 5_386, 0.05) == [3]
    for record_id in ("a", "b", "c", "d"):
        (block,) = held_out_blocks(record_id, SPLIT_BLOCK_BASES + 1, 0.05)
        assert block == 0  # the only full block; the 1-base tail stays for training
    assert held_out_blocks("a", 5_386, 0.0) == []  # --val-fraction 0: nothing held out


def test_held_out_share_follows_val_fraction_and_raising_it_only_adds_blocks():
    length = 4_000 * SPLIT_BLOCK_BASES
    five, ten = (set(held_out_blocks("chrZ", length, fraction)) for fraction in (0.05, 0.1))
    assert len(five) / 4_000 == pytest.approx(0.05, abs=0.01)
    assert five < ten  # a later job that raises --val-fraction never trains on an old held-out block


def test_capped_evaluation_windows_are_chosen_by_a_stable_hash_whatever_the_order():
    lambda_record, phix_record = load_records(LAMBDA)[0], load_records(PHIX)[0]
    shuffled = SequenceRecord("other", np.roll(lambda_record.tokens, 7), "test")

    def capped(records: list[SequenceRecord]) -> set[tuple[str, int]]:
        corpus = WindowCorpus(records, max_length=128, val_fraction=0.05)
        windows = corpus.val_windows(5)
        assert len(windows) == 5 and (np.diff(windows[:, 0]) > 0).all()
        index = corpus.record_index(windows[:, 0])
        return {
            (corpus.record_ids[r], int(s - corpus.record_starts[r]))
            for s, r in zip(windows[:, 0].tolist(), index.tolist(), strict=True)
        }

    chosen = capped([lambda_record, phix_record, shuffled])
    assert capped([shuffled, phix_record, lambda_record]) == chosen
    everything = WindowCorpus([lambda_record, phix_record, shuffled], max_length=128, val_fraction=0.05)
    assert len(everything.val_windows()) > 5


def test_eval_windows_tile_the_held_out_runs_and_gather_their_bases():
    bases = b"ACGT" * 5_000
    corpus = WindowCorpus([SequenceRecord("r", encode_dna(bases).astype(np.uint8), "t")], 300, 0.2)
    windows = corpus.val_windows()
    assert windows[:, 1].sum() == corpus.val_tokens
    for start, end in corpus.val_spans.tolist():
        inside = windows[(windows[:, 0] >= start) & (windows[:, 0] < end)]
        assert inside[0, 0] == start and (inside[:, 0] + inside[:, 1]).max() == end
