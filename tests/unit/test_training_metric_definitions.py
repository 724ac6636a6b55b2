"""The metric regexes SageMaker applies to train.py's log lines (docs/contracts.md)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.training.metrics import BEST_FIELDS, METRIC_DEFINITIONS

REPO = Path(__file__).resolve().parents[2]
BEST_LINE = (
    "[best] step=100 eval_loss=1.287804 eval_perplexity=3.624818 final_eval_loss=1.290000 "
    "final_eval_perplexity=3.632787 baseline_eval_loss=1.309853 baseline_eval_perplexity=3.705629 "
    "seen_eval_loss=1.280000 seen_eval_perplexity=3.596639 seen_baseline_eval_loss=1.286106 "
    "seen_baseline_eval_perplexity=3.618669 new_eval_loss=1.300000 new_eval_perplexity=3.669297 "
    "new_baseline_eval_loss=1.333600 new_baseline_eval_perplexity=3.794679"
)


def _final_metrics(log: str) -> dict[str, float]:
    """What SageMaker's FinalMetricDataList holds: the last value each regex found."""
    found: dict[str, float] = {}
    for line in log.splitlines():
        for definition in METRIC_DEFINITIONS:
            match = re.search(definition["Regex"], line)
            if match:
                found[definition["Name"]] = float(match.group(1))
    return found


def test_definitions_fit_botocores_metric_definition_shape() -> None:
    # MetricDefinitionList: at most 40; MetricName 1-255, MetricRegex 1-500 characters.
    assert len(METRIC_DEFINITIONS) <= 40
    assert len({d["Name"] for d in METRIC_DEFINITIONS}) == len(METRIC_DEFINITIONS)
    assert all(1 <= len(d["Name"]) <= 255 and 1 <= len(d["Regex"]) <= 500 for d in METRIC_DEFINITIONS)


def test_regexes_read_the_contract_lines() -> None:
    log = (
        "[train] step=120 loss=1.234500 perplexity=3.437100 tokens_per_s=5230.1 lr=0.000500\n"
        "some other output perplexity=99\n"
        "[eval] step=120 loss=1.300000 perplexity=3.669300\n"
        "[eval:seen] step=120 loss=1.100000 perplexity=3.004166\n"
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


def test_best_regexes_read_each_field_and_not_its_baseline_or_source_namesakes() -> None:
    metrics = _final_metrics(BEST_LINE + "\n")

    assert {name: metrics[name] for name in BEST_FIELDS.values()} == {
        "best:eval_perplexity": 3.624818,
        "best:baseline_eval_perplexity": 3.705629,
        "best:seen_eval_perplexity": 3.596639,
        "best:seen_baseline_eval_perplexity": 3.618669,
        "best:new_eval_perplexity": 3.669297,
        "best:new_baseline_eval_perplexity": 3.794679,
    }
    assert metrics["best:step"] == 100
    assert "eval:perplexity" not in metrics  # `[best]` is not an `[eval]` line


def test_a_cold_start_best_line_yields_no_baseline_and_a_diverged_one_yields_nan() -> None:
    cold = _final_metrics("[best] step=150 eval_loss=1.329776 eval_perplexity=3.780197\n")
    diverged = _final_metrics(
        "[best] step=25 eval_loss=nan eval_perplexity=nan baseline_eval_perplexity=3.7\n"
    )

    assert set(cold) == {"best:step", "best:eval_perplexity"} and cold["best:eval_perplexity"] == 3.780197
    assert math.isnan(diverged["best:eval_perplexity"]) and diverged["best:baseline_eval_perplexity"] == 3.7


def _train(data: Path, model_dir: Path, *extra: str) -> str:
    command = [
        sys.executable,
        str(REPO / "training_job" / "train.py"),
        "--data", str(data),
        "--model-dir", str(model_dir),
        "--max-steps", "2", "--eval-interval", "1", "--log-interval", "1",
        "--max-length", "64", "--batch-size", "2", "--eval-windows", "0",
        *extra,
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=model_dir.parent)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout + run.stderr


@pytest.mark.slow
def test_regexes_read_real_train_py_output_as_metrics_json_has_it(tmp_path: Path) -> None:
    # A cold start on phiX174, then a warm start on phiX174 + lambda: "seen" and "new" data.
    first_data, both = tmp_path / "first", tmp_path / "both"
    first_data.mkdir(), both.mkdir()
    shutil.copy(REPO / "data" / "phix174_NC_001422.fa", first_data)
    shutil.copy(REPO / "data" / "phix174_NC_001422.fa", both)
    shutil.copy(REPO / "data" / "lambda_phage_NC_001416.fa", both)

    cold = _final_metrics(_train(first_data, tmp_path / "cold"))
    warm = _final_metrics(_train(both, tmp_path / "warm", "--init-from", str(tmp_path / "cold")))

    assert {"train:loss", "train:perplexity", "train:tokens_per_s", "eval:loss", "eval:perplexity"} <= set(
        cold
    )
    # The parsed figure is the one train.py wrote (not merely plausible): its kept evaluation's.
    cold_written = json.loads((tmp_path / "cold" / "metrics.json").read_text())
    assert cold["best:eval_perplexity"] == pytest.approx(cold_written["eval_perplexity"], abs=1e-6)
    assert cold["best:eval_perplexity"] == pytest.approx(math.exp(cold_written["eval_loss"]), rel=1e-5)
    assert cold["best:step"] == cold_written["best_step"]
    assert "best:baseline_eval_perplexity" not in cold
    written = json.loads((tmp_path / "warm" / "metrics.json").read_text())
    by_source = written["eval_by_source"]
    expected = {
        "best:step": written["best_step"],
        "best:eval_perplexity": written["eval_perplexity"],
        "best:baseline_eval_perplexity": written["baseline_eval_perplexity"],
        "best:seen_eval_perplexity": by_source["seen"]["eval_perplexity"],
        "best:seen_baseline_eval_perplexity": by_source["seen"]["baseline_eval_perplexity"],
        "best:new_eval_perplexity": by_source["new"]["eval_perplexity"],
        "best:new_baseline_eval_perplexity": by_source["new"]["baseline_eval_perplexity"],
    }
    assert {name: warm[name] for name in expected} == pytest.approx(expected, abs=1e-6)
