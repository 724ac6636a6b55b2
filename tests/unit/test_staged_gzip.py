"""The staged tiles' gzip (pipeline/ingest/staging.py): ISA-L where the wheel is installed, stdlib
zlib otherwise; either way standard gzip that `gzip -t`, Python and the HealthOmics checks read."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hyenaflow.local.omics.fastq_validation import validate_fastq_gz
from pipeline.ingest.fasta_stream import FastaToFastq
from pipeline.ingest.staging import DEFAULT_DEFLATE, deflater_name, gzip_member

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "fasta"


def fastq_pieces(fixture: str, tile_len: int = 1000) -> list[bytes]:
    """The FASTQ pieces ingest hands to staging for a real genome (one per 4 KiB read)."""
    data = (FIXTURES / fixture).read_bytes()
    parser = FastaToFastq(tile_len=tile_len)
    pieces = [parser.feed(data[i : i + 4096]) for i in range(0, len(data), 4096)]
    pieces.append(parser.finish()[0])
    return [piece for piece in pieces if piece]


@pytest.mark.parametrize("deflate", ["isal", "zlib"])
def test_staged_members_are_standard_gzip_whichever_deflater_wrote_them(tmp_path, deflate):
    pieces = fastq_pieces("lambda_phage_NC_001416.fa")
    members = [gzip_member(pieces[i : i + 3], 1, deflate) for i in range(0, len(pieces), 3)]
    staged = tmp_path / "lambda.001.fastq.gz"
    staged.write_bytes(b"".join(members))

    assert len(members) > 1  # concatenated members, as staging writes them
    assert subprocess.run([shutil.which("gzip") or "gzip", "-t", str(staged)]).returncode == 0
    assert gzip.decompress(staged.read_bytes()) == b"".join(pieces)
    reads, bases, _ = validate_fastq_gz(staged.read_bytes(), f"s3://bucket/{staged.name}")
    assert (reads, bases) == (49, 48_502)


def test_isal_deflates_levels_1_to_3_and_zlib_the_rest():
    assert DEFAULT_DEFLATE == "isal"  # the wheel is pinned in the lambda group and the package
    assert [deflater_name(level) for level in (0, 1, 3, 4, 9)] == [
        "zlib level 0",
        "isal level 1",
        "isal level 3",
        "zlib level 4",
        "zlib level 9",
    ]
    assert deflater_name(1, deflate="zlib") == "zlib level 1"
    stored = gzip_member([b"@r:0-4\nACGT\n+\nIIII\n"], 0)
    assert gzip.decompress(stored) == b"@r:0-4\nACGT\n+\nIIII\n"


def test_without_the_isal_wheel_staging_falls_back_to_zlib():
    probe = (
        "import sys, gzip; sys.modules['isal'] = None\n"  # what a package without the wheel sees
        "from pipeline.ingest.staging import DEFAULT_DEFLATE, deflater_name, gzip_member\n"
        "data = b'@r:0-4\\nACGT\\n+\\nIIII\\n'\n"
        "assert gzip.decompress(gzip_member([data, data])) == data * 2\n"
        "print(DEFAULT_DEFLATE, deflater_name(1))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO / "functions",
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["zlib", "zlib", "level", "1"]
