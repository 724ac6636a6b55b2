"""What ingest loads per format: FASTA never touches Biopython (its speed and the cold start stay
as they were); a flat file loads Biopython's scanner but still no numpy (no Lambda imports it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from pipeline.ingest.uploaded_fasta import _stream_to_staging

class Staged:  # stands in for StagedFastqUpload: keeps nothing
    def write(self, fastq): pass
    def close(self): return []

with open(sys.argv[1], "rb") as body:
    summary, _ = _stream_to_staging(body, Staged(), sys.argv[2])
print(summary.file_format, summary.bases, "Bio" in sys.modules, "numpy" in sys.modules)
"""


@pytest.mark.parametrize(
    ("fixture", "file_format", "expected"),
    [
        ("fasta/phix174_NC_001422.fa", "fasta", "FASTA 5386 False False"),
        ("flatfiles/NC_005816.gb", "genbank", "GenBank 9609 True False"),
        ("flatfiles/AE017046.embl", "embl", "EMBL 9609 True False"),
    ],
)
def test_fasta_ingest_never_loads_biopython_and_flat_files_never_load_numpy(fixture, file_format, expected):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "tests" / "fixtures" / fixture), file_format],
        cwd=REPO / "functions",
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == expected
