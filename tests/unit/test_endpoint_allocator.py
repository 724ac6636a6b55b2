"""The endpoint keeps freed activation buffers mapped, so a request does not fault its memory in again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE_DIR = REPO / "tests" / "fixtures" / "hyenadna" / "tiny_reference"

# Five `score` requests of 1 kb after ten to warm up: the minor page faults they take. Without the
# allocator settings glibc keeps handing freed activations back to the kernel (700-2,200 faults
# here, each a zeroed page or huge page); with them the blocks are reused from the heap (0).
REQUESTS_AFTER_WARM_UP = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    torch.set_num_threads(1)
    import inference
    model = inference.model_fn(sys.argv[1])
    body = json.dumps({"task": "score", "sequences": ["ACGGTCA" * 143]})
    def score():
        inference.predict_fn(inference.input_fn(body, "application/json"), model)
    for _ in range(10):
        score()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        score()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt(3) is glibc's")
def test_model_fn_makes_repeated_requests_reuse_mapped_memory():
    result = subprocess.run(
        [sys.executable, "-c", REQUESTS_AFTER_WARM_UP, str(REFERENCE_DIR)],
        cwd=REPO / "endpoint",
        capture_output=True,
        text=True,
        check=True,
    )
    page_faults = int(result.stdout.split()[-1])
    assert page_faults < 20, f"{page_faults} page faults in five warm 1 kb requests"


def test_keep_freed_buffers_reports_whether_the_c_library_took_the_settings():
    from allocator import keep_freed_buffers

    assert keep_freed_buffers() is sys.platform.startswith("linux")
