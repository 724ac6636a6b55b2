"""train.py as SageMaker (and the local stack) runs it: from the extracted source bundle, with the
SM_* environment, hyperparameters as `--key value` (sagemaker_* included), on FASTQ tiles of a
real genome laid out like HealthOmics read sets. Checks everything later stages rely on.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hyenadna import HyenaDNAForCausalLM
from hyenaflow.packaging import build_training_bundle
from pipeline.training.metrics import METRIC_DEFINITIONS
from tests.support.fastq_tiles import records_to_fastq

REPO = Path(__file__).resolve().parents[2]
LAMBDA_FASTA = REPO / "data" / "lambda_phage_NC_001416.fa"

pytestmark = pytest.mark.slow


def lambda_record() -> tuple[str, bytes]:
    header, *lines = LAMBDA_FASTA.read_bytes().splitlines()
    return header[1:].split()[0].decode(), b"".join(lines)


@pytest.fixture(scope="module")
def sagemaker_job(tmp_path_factory) -> dict:
    job = tmp_path_factory.mktemp("job")
    source = job / "code"
    build_training_bundle(job / "sourcedir.tar.gz")
    with tarfile.open(job / "sourcedir.tar.gz") as archive:
        archive.extractall(source, filter="data")
    read_set = job / "input" / "data" / "train" / "readSet" / "1234567890"
    read_set.mkdir(parents=True)
    (read_set / "lambda.fastq.gz").write_bytes(gzip.compress(b"".join(records_to_fastq([lambda_record()]))))
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(job / "input" / "data" / "train"),
        "SM_MODEL_DIR": str(job / "model"),
        "SM_OUTPUT_DATA_DIR": str(job / "output" / "data"),
        "SM_CHANNELS": '["train"]',
    }
    hyperparameters = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": "s3://hyenaflow-code/sourcedir.tar.gz",
        "max_steps": "8",
        "max_length": "256",
        "batch_size": "4",
        "learning_rate": "0.003",
        "model_size": "tiny",
        "warmup_steps": "2",
        "log_interval": "2",
        "eval_interval": "4",
        "eval_windows": "4",
    }
    argv = [item for key, value in hyperparameters.items() for item in (f"--{key}", value)]
    result = subprocess.run(
        [sys.executable, "train.py", *argv], cwd=source, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {"job": job, "stdout": result.stdout, "stderr": result.stderr}


def test_metric_lines_are_read_by_the_sagemaker_metric_definitions(sagemaker_job):
    lines = sagemaker_job["stdout"].splitlines()
    assert [line.split()[:2] for line in lines if line.startswith("[train]")] == [
        ["[train]", f"step={s}"] for s in (2, 4, 6, 8)
    ]
    assert [line.split()[:2] for line in lines if line.startswith("[eval]")] == [
        ["[eval]", "step=4"],
        ["[eval]", "step=8"],
    ]
    # A cold start: the [best] line has no baseline and no per-source fields (docs/contracts.md),
    # so those definitions match nothing; every other one matches finite, positive values.
    warm_start_only = ("baseline", "seen_", "new_")
    for definition in METRIC_DEFINITIONS:
        values = [float(m.group(1)) for line in lines if (m := re.search(definition["Regex"], line))]
        if any(part in definition["Name"] for part in warm_start_only):
            assert values == [], definition["Name"]
            continue
        assert values, f"no line matched {definition['Name']}"
        assert all(np.isfinite(values)) and all(v > 0 for v in values)


def test_artifact_holds_model_tokenizer_metrics_plots_and_serving_code(sagemaker_job):
    model_dir = sagemaker_job["job"] / "model"
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", "metrics.json"):
        assert (model_dir / name).is_file(), name
    for plot in ("loss.png", "perplexity.png"):
        assert (model_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = model_dir / "code"
    assert (code / "inference.py").read_bytes() == (REPO / "endpoint" / "inference.py").read_bytes()
    # The whole model package, so the inference container imports it with nothing downloaded.
    assert sorted(p.name for p in (code / "hyenadna").glob("*.py")) == sorted(
        p.name for p in (REPO / "hyenadna").glob("*.py")
    )
    assert "transformers==" in (code / "requirements.txt").read_text()
    assert not (model_dir / "checkpoints").exists(), "checkpoints must not bloat model.tar.gz"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "hyenadna" and config["d_model"] == 128


def test_metrics_json_holds_the_best_evaluation_and_the_saved_model_reproduces_it(sagemaker_job):
    model_dir = sagemaker_job["job"] / "model"
    metrics = json.loads((model_dir / "metrics.json").read_text())
    lines = sagemaker_job["stdout"].splitlines()
    best_eval = [line for line in lines if line.startswith(f"[eval] step={metrics['best_step']} ")]
    assert best_eval and f"loss={metrics['eval_loss']:.6f}" in best_eval[0]
    assert (
        f"loss={metrics['final_eval_loss']:.6f}" in [line for line in lines if line.startswith("[eval]")][-1]
    )
    assert [line for line in lines if line.startswith("[best]")] == [
        f"[best] step={metrics['best_step']} eval_loss={metrics['eval_loss']:.6f} "
        f"eval_perplexity={metrics['eval_perplexity']:.6f} final_eval_loss={metrics['final_eval_loss']:.6f} "
        f"final_eval_perplexity={metrics['final_eval_perplexity']:.6f}"
    ]
    assert json.loads((model_dir / "training_data.json").read_text())["trained_on"] == [lambda_record()[0]]
    assert metrics["steps"] == 8 and metrics["tokens_seen"] == 8 * 4 * 256
    assert metrics["eval_perplexity"] == pytest.approx(np.exp(metrics["eval_loss"]))

    # Reload the artifact and score the same validation windows: the saved weights are the trained ones.
    from sequence_data import WindowCorpus, load_records

    corpus = WindowCorpus(load_records(LAMBDA_FASTA), max_length=256, val_fraction=0.05)
    model = HyenaDNAForCausalLM.from_pretrained(model_dir).eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for window in corpus.val_windows(4):
            input_ids, labels = corpus.gather(window[None])
            n = int((labels[:, 1:] != -100).sum())
            total += (
                model(input_ids=torch.from_numpy(input_ids), labels=torch.from_numpy(labels)).loss.item() * n
            )
            tokens += n
    assert total / tokens == pytest.approx(metrics["eval_loss"], abs=1e-5)


def test_tensorboard_events_and_checkpoints_stay_in_the_job_folder(sagemaker_job):
    job = sagemaker_job["job"]
    assert list((job / "output" / "data" / "tensorboard").glob("events.out.tfevents.*"))
    assert [p.name for p in (job / "output" / "checkpoints").glob("checkpoint-*.pt")] == [
        "checkpoint-00000008.pt"
    ]


def test_bad_data_fails_the_job_before_training_with_file_and_line_as_failure_reason(tmp_path):
    channel = tmp_path / "input" / "data" / "train" / "readSet" / "rs9"
    channel.mkdir(parents=True)
    (channel / "good.fastq").write_bytes(b"@chr1:0-4\nACGT\n+\nIIII\n")
    (channel / "bad.fastq").write_bytes(b"@chr2:0-4\nACGT\n+\nIIII\n@chr2:4-8\nAC*T\n+\nIIII\n")
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(tmp_path / "input" / "data" / "train"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
    }
    (tmp_path / "output" / "data").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, str(REPO / "training_job" / "train.py"), "--max_steps", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "bad.fastq: line 6, column 3: b'*' is not a nucleotide" in result.stderr
    assert "Traceback" not in result.stderr and "[train]" not in result.stdout
    assert "bad.fastq: line 6" in (tmp_path / "output" / "failure").read_text()


def test_next_job_warm_starts_from_the_previous_model_directory(sagemaker_job, tmp_path):
    previous = json.loads((sagemaker_job["job"] / "model" / "metrics.json").read_text())
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "training_job" / "train.py"),
            "--data",
            str(LAMBDA_FASTA),
            "--model-dir",
            str(tmp_path / "model"),
            "--init-from",
            str(sagemaker_job["job"] / "model"),
            "--max-steps",
            "1",
            "--max-length",
            "256",
            "--batch-size",
            "4",
            "--learning-rate",
            "1e-5",
            "--eval-windows",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warm start from" in result.stderr
    warm = json.loads((tmp_path / "model" / "metrics.json").read_text())
    # Same held-out windows (the FASTA holds out what the tiles did): the step-0 baseline is the
    # previous model's own figure, and one tiny step later the loss has barely moved (a fresh
    # tiny model scores ~2.5 nats/base here).
    assert warm["baseline_eval_loss"] == pytest.approx(previous["eval_loss"], abs=1e-6)
    assert warm["eval_loss"] == pytest.approx(previous["eval_loss"], abs=0.02)
