"""The metric regexes SageMaker applies to train.py's log lines (docs/contracts.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.training.metrics import EVAL_PERPLEXITY, METRIC_DEFINITIONS

REPO = Path(__file__).resolve().parents[2]


def _final_metrics(log: str) -> dict[str, float]:
    """What SageMaker's FinalMetricDataList holds: the last value each regex found."""
    found: dict[str, float] = {}
    for line in log.splitlines():
        for definition in METRIC_DEFINITIONS:
            match = re.search(definition["Regex"], line)
            if match:
                found[definition["Name"]] = float(match.group(1))
    return found


def test_regexes_read_the_contract_lines() -> None:
    log = (
        "[train] step=120 loss=1.234500 perplexity=3.437100 tokens_per_s=5230.1 lr=0.000500\n"
        "some other output perplexity=99\n"
        "[eval] step=120 loss=1.300000 perplexity=3.669300\n"
    )
    assert _final_metrics(log) == {
        "train:loss": 1.2345,
        "train:perplexity": 3.4371,
        "train:tokens_per_s": 5230.1,
        "eval:loss": 1.3,
        "eval:perplexity": 3.6693,
    }


def test_train_perplexity_regex_does_not_pick_up_eval_lines() -> None:
    metrics = _final_metrics("[eval] step=5 loss=2.000000 perplexity=7.389056\n")
    assert set(metrics) == {"eval:loss", "eval:perplexity"}


@pytest.mark.slow
def test_regexes_read_real_train_py_output(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(REPO / "training_job" / "train.py"),
        "--data", str(REPO / "data" / "phix174_NC_001422.fa"),
        "--model-dir", str(tmp_path / "model"),
        "--max-steps", "2", "--eval-interval", "1", "--log-interval", "1",
        "--max-length", "64", "--batch-size", "2", "--eval-windows", "2",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]

    metrics = _final_metrics(run.stdout + run.stderr)

    assert {"train:loss", "train:perplexity", "train:tokens_per_s", "eval:loss", EVAL_PERPLEXITY} <= set(
        metrics
    )
    assert 1.0 < metrics[EVAL_PERPLEXITY] < 20.0  # 4 bases: a near-untrained model sits near 4
