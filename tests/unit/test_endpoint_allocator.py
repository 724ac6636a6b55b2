"""The endpoint keeps freed activation buffers in the heap: glibc serves blocks up to 32 MiB from
it (already mapped on reuse) instead of fresh mmap()s, and still mmap()s larger ones (a megabase's
tensors go back to the system when freed).

Checked with glibc's own accounting (mallinfo2: `hblkhd`, bytes in mmap()ed blocks) in a fresh
interpreter per case, since the settings last for the process. Page-fault counts were tried and
dropped: glibc's adaptive threshold often gives reuse without the settings, so they vary run to run.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ENDPOINT = Path(__file__).resolve().parents[2] / "endpoint"

# Prints the bytes glibc mmap()s for an 8 MiB and then a 64 MiB torch tensor, after
# keep_freed_buffers() if argv[1] == "keep".
PROBE = """
import ctypes, json, sys
import torch

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
def mmapped():
    return libc.mallinfo2().hblkhd

taken = None
if sys.argv[1] == "keep":
    from allocator import keep_freed_buffers
    taken = keep_freed_buffers()
grown = {}
for mib in (8, 64):
    before = mmapped()
    block = torch.empty(mib << 18)  # mib MiB of float32
    grown[mib] = mmapped() - before
    del block
print(json.dumps({"taken": taken, "mmapped_8": grown[8], "mmapped_64": grown[64]}))
"""

glibc_only = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt(3) and mallinfo2(3) are glibc's"
)


def _probe(mode: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=ENDPOINT, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.splitlines()[-1])


@glibc_only
def test_activations_up_to_32_mib_come_from_the_heap_larger_ones_are_still_mmapped():
    kept = _probe("keep")
    assert kept["taken"] is True
    assert kept["mmapped_8"] == 0  # from the heap: mapped already when it is reused
    assert kept["mmapped_64"] >= 64 << 20  # over glibc's ceiling: handed back when freed


@glibc_only
def test_without_the_settings_glibc_mmaps_a_fresh_8_mib_block():
    # What the settings change (glibc starts with a 128 KiB mmap threshold).
    assert _probe("plain")["mmapped_8"] >= 8 << 20


@glibc_only
def test_model_fn_applies_the_settings():
    probe = (
        "import inference\n"
        "calls = []\n"
        "inference.keep_freed_buffers = lambda: calls.append(1) or True\n"
        "import sys; inference.model_fn(sys.argv[1]); print(len(calls))\n"
    )
    model_dir = ENDPOINT.parent / "tests" / "fixtures" / "hyenadna" / "tiny_reference"
    result = subprocess.run(
        [sys.executable, "-c", probe, str(model_dir)],
        cwd=ENDPOINT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split()[-1] == "1"
