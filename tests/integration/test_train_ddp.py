"""Two processes under torchrun (gloo, CPU) train exactly like one process with the same global
batch: the global batch of each step is split across processes instead of across accumulation
micro-steps, and gradients are averaged the same way."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "training_job" / "train.py"

pytestmark = pytest.mark.slow


def run(launcher: list[str], model_dir: Path) -> str:
    args = [
        str(TRAIN),
        "--data",
        str(REPO / "data" / "lambda_phage_NC_001416.fa"),
        "--model-dir",
        str(model_dir),
        "--max-steps",
        "4",
        "--max-length",
        "128",
        "--batch-size",
        "2",
        "--global-batch-size",
        "4",
        "--warmup-steps",
        "2",
        "--log-interval",
        "1",
        "--eval-interval",
        "2",
        "--eval-windows",
        "6",
        "--rc-probability",
        "0.5",
    ]
    # Own process group, so a hang (a collective one process never joins) kills the workers too.
    job = subprocess.Popen(
        [*launcher, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # torchrun's default per worker; the same for one process
    )
    try:
        stdout, stderr = job.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        job.communicate()
        raise
    assert job.returncode == 0, stderr[-3000:]
    return stdout


def metric(stdout: str, kind: str) -> list[tuple[int, float]]:
    return [(int(s), float(v)) for s, v in re.findall(rf"^\[{kind}\] step=(\d+) loss=(\S+)", stdout, re.M)]


def test_two_process_ddp_matches_one_process_with_gradient_accumulation(tmp_path):
    single = run([sys.executable], tmp_path / "single")
    ddp = run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
        tmp_path / "ddp",
    )
    single_train, ddp_train = metric(single, "train"), metric(ddp, "train")
    assert [s for s, _ in single_train] == [s for s, _ in ddp_train] == [1, 2, 3, 4]
    assert [loss for _, loss in ddp_train] == pytest.approx([loss for _, loss in single_train], abs=2e-5)
    single_eval, ddp_eval = metric(single, "eval"), metric(ddp, "eval")
    assert [s for s, _ in ddp_eval] == [s for s, _ in single_eval] == [2, 4]
    assert [loss for _, loss in ddp_eval] == pytest.approx([loss for _, loss in single_eval], abs=2e-5)
    # Learning happened (the comparison is not between two flat lines).
    assert single_train[-1][1] < single_train[0][1] - 0.1
    assert (tmp_path / "ddp" / "metrics.json").is_file()
