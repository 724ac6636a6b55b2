"""A training job killed mid-run (SIGKILL, as a spot interruption) resumes from its checkpoint and
ends where an uninterrupted job ends: same step, same losses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "training_job" / "train.py"
MAX_STEPS = 20
# One thread per run: the first two runs go side by side, and every run does the same arithmetic.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

pytestmark = pytest.mark.slow


def train_command(model_dir: Path) -> list[str]:
    return [
        sys.executable,
        str(TRAIN),
        "--data",
        str(REPO / "data" / "lambda_phage_NC_001416.fa"),
        "--model-dir",
        str(model_dir),
        "--max-steps",
        str(MAX_STEPS),
        "--max-length",
        "64",
        "--batch-size",
        "2",
        "--warmup-steps",
        "4",
        "--log-interval",
        "1",
        "--eval-interval",
        "10",
        "--eval-windows",
        "2",
        "--checkpoint-interval",
        "4",
    ]


def train_losses(stdout: str) -> dict[int, str]:
    """step -> the loss text of its [train] line (compared as printed, 6 decimals)."""
    return {
        int(m.group(1)): m.group(2) for m in re.finditer(r"^\[train\] step=(\d+) loss=(\S+)", stdout, re.M)
    }


def eval_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[eval]")]


def start(model_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        train_command(model_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )


def test_killed_job_resumes_from_its_checkpoint_and_matches_an_uninterrupted_job(tmp_path):
    whole_job = start(tmp_path / "whole")
    killed_dir = tmp_path / "killed"
    first_checkpoint = killed_dir / "checkpoints" / "checkpoint-00000004.pt"
    job = start(killed_dir)
    deadline = time.monotonic() + 300
    while not first_checkpoint.exists():
        assert job.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        try:
            job.wait(timeout=0.02)  # wakes early if the process exits
        except subprocess.TimeoutExpired:
            pass
    job.send_signal(signal.SIGKILL)
    job.communicate(timeout=60)
    assert job.returncode == -signal.SIGKILL
    assert not (killed_dir / "metrics.json").exists(), "the job finished before it was killed"
    checkpoints = sorted((killed_dir / "checkpoints").glob("checkpoint-*.pt"))
    resumed_from = int(re.search(r"(\d+)", checkpoints[-1].name).group(1))
    assert resumed_from < MAX_STEPS

    resumed = subprocess.run(
        train_command(killed_dir), capture_output=True, text=True, timeout=400, check=True, env=ENV
    )
    assert f"resuming from {checkpoints[-1]} (step {resumed_from})" in resumed.stderr
    whole_stdout, whole_stderr = whole_job.communicate(timeout=400)
    assert whole_job.returncode == 0, whole_stderr[-3000:]

    whole, after_resume = train_losses(whole_stdout), train_losses(resumed.stdout)
    assert sorted(after_resume) == list(range(resumed_from + 1, MAX_STEPS + 1))
    assert after_resume == {step: whole[step] for step in after_resume}
    assert eval_lines(resumed.stdout)[-1] == eval_lines(whole_stdout)[-1]
    resumed_metrics = json.loads((killed_dir / "metrics.json").read_text())
    whole_metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert resumed_metrics["steps"] == whole_metrics["steps"] == MAX_STEPS
    assert resumed_metrics["eval_loss"] == whole_metrics["eval_loss"]
    assert resumed_metrics["history"]["eval"] == whole_metrics["history"]["eval"]
