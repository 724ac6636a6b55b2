"""FASTA -> ingest's FASTQ tile writer -> gzip tiles on disk -> training reader -> the same records.

The writer side is the Lambda's own code (functions/pipeline/ingest/fastq_tiles.py and the streaming
FASTA parser that feeds it); the reader side is training_job/sequence_data.py. Together they must
give back every record byte for byte (uppercased, IUPAC codes as N), however the tiles are split
over files and read sets.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pytest

from hyenadna import encode_dna
from pipeline.dna_alphabet import normalize_bases
from pipeline.ingest.fasta_stream import FastaToFastq
from sequence_data import load_records, read_fastq_tiles, rejoin_tiles
from tests.support.fastq_tiles import records_to_fastq

REPO = Path(__file__).resolve().parents[2]
GENOMES = [
    REPO / "data" / "lambda_phage_NC_001416.fa",
    REPO / "tests" / "fixtures" / "fasta" / "soft_masked_iupac.fa",
]


def fasta_records(path: Path) -> dict[str, bytes]:
    """Record id -> the bases ingest promises (uppercase ACGTN), parsed independently of both sides."""
    records: dict[str, bytes] = {}
    record_id = None
    for line in path.read_bytes().splitlines():
        if line.startswith(b">"):
            record_id = line[1:].split()[0].decode()
            records[record_id] = b""
        elif record_id is not None:
            records[record_id] += normalize_bases(line)
    return records


def stream_fasta_to_fastq(path: Path, tile_len: int, rng: random.Random) -> bytes:
    """The Lambda's streaming path, fed in chunks of random size (chunk edges land mid-line and mid-CRLF)."""
    converter, data, out, pos = FastaToFastq(tile_len), path.read_bytes(), [], 0
    while pos < len(data):
        size = rng.randint(1, 5000)
        out.append(converter.feed(data[pos : pos + size]))
        pos += size
    tail, _ = converter.finish()
    return b"".join(out) + tail


@pytest.mark.parametrize("genome", GENOMES, ids=lambda p: p.name)
def test_streamed_fasta_tiles_rejoin_byte_for_byte(genome: Path, tmp_path: Path):
    fastq = stream_fasta_to_fastq(genome, tile_len=997, rng=random.Random(1))
    tile_file = tmp_path / "tiles.fastq.gz"
    tile_file.write_bytes(gzip.compress(fastq))
    with tile_file.open("rb") as raw, gzip.open(raw) as stream:
        rejoined = {
            record_id: bases for record_id, bases, _ in rejoin_tiles(read_fastq_tiles(stream, str(tile_file)))
        }
    assert rejoined == fasta_records(genome)


def test_tiles_shuffled_over_read_sets_load_as_the_original_records(tmp_path: Path):
    expected = {**fasta_records(GENOMES[0]), **fasta_records(REPO / "data" / "phix174_NC_001422.fa")}
    lines = b"".join(records_to_fastq(expected.items(), tile_len=1500)).splitlines(keepends=True)
    reads = [b"".join(lines[i : i + 4]) for i in range(0, len(lines), 4)]
    random.Random(7).shuffle(reads)
    for i, part in enumerate((reads[: len(reads) // 3], reads[len(reads) // 3 :])):
        folder = tmp_path / "readSet" / f"rs{i}"
        folder.mkdir(parents=True)
        (folder / f"part{i}.fastq.gz").write_bytes(gzip.compress(b"".join(part)))
    loaded = {r.record_id: r.tokens for r in load_records(tmp_path)}
    assert sorted(loaded) == sorted(expected)
    for record_id, bases in expected.items():
        np.testing.assert_array_equal(loaded[record_id], encode_dna(bases))
