"""Two processes under torchrun (gloo, CPU) train exactly like one process with the same global
batch: the global batch of each step is split across processes instead of across accumulation
micro-steps, and gradients are averaged the same way. The job is a warm start on two genomes, so
the step-0 baseline and the per-source evaluation (each process scores a share of the windows of
both sources; the sums are all-reduced per source) must match too."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "training_job" / "train.py"

pytestmark = pytest.mark.slow


def starting_model(folder: Path) -> Path:
    """A model that was trained on lambda phage (by its training_data.json): lambda is "seen", phiX174 "new"."""
    shutil.copytree(REPO / "tests" / "fixtures" / "hyenadna" / "tiny_reference", folder)
    (folder / "training_data.json").write_text(json.dumps({"trained_on": ["gi|9626243|ref|NC_001416.1|"]}))
    return folder


def run(launcher: list[str], model_dir: Path, data: Path, init_from: Path) -> str:
    args = [
        str(TRAIN),
        "--data",
        str(data),
        "--model-dir",
        str(model_dir),
        "--init-from",
        str(init_from),
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
        "--learning-rate",
        "3e-3",
        "--log-interval",
        "1",
        "--eval-interval",
        "2",
        "--eval-windows",
        "0",
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
    return [
        (int(s), float(v))
        for s, v in re.findall(rf"^\[{re.escape(kind)}\] step=(\d+) loss=(\S+)", stdout, re.M)
    ]


def test_two_process_ddp_matches_one_process_with_gradient_accumulation(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for genome in ("lambda_phage_NC_001416.fa", "phix174_NC_001422.fa"):
        shutil.copy(REPO / "data" / genome, data)
    init_from = starting_model(tmp_path / "start")
    single = run([sys.executable], tmp_path / "single", data, init_from)
    ddp = run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
        tmp_path / "ddp",
        data,
        init_from,
    )
    single_train, ddp_train = metric(single, "train"), metric(ddp, "train")
    assert [s for s, _ in single_train] == [s for s, _ in ddp_train] == [1, 2, 3, 4]
    assert [loss for _, loss in ddp_train] == pytest.approx([loss for _, loss in single_train], abs=2e-5)
    for kind in ("eval", "eval:seen", "eval:new"):
        single_eval, ddp_eval = metric(single, kind), metric(ddp, kind)
        assert [s for s, _ in ddp_eval] == [s for s, _ in single_eval] == [0, 2, 4], kind
        assert [loss for _, loss in ddp_eval] == pytest.approx([loss for _, loss in single_eval], abs=2e-5), (
            kind
        )
    # The two sources differ, so a per-source sum mixed up between processes would show.
    assert abs(metric(single, "eval:seen")[0][1] - metric(single, "eval:new")[0][1]) > 1e-3
    # The weights moved (the comparison is not between two flat lines). Not "the loss fell": four
    # steps at 3e-3 from LongSafari's tiny checkpoint on phage DNA go either way.
    assert abs(single_train[-1][1] - single_train[0][1]) > 0.1
    assert (tmp_path / "ddp" / "metrics.json").is_file()
