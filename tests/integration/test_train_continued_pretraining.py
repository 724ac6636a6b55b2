"""Continued pretraining, as the pipeline runs it: job 1 trains on lambda phage, job 2 warm-starts
from job 1 on lambda + phiX174, job 3 warm-starts from job 2 with a far too high learning rate.
Each warm start measures the model it would replace on its own held-out data at step 0, reports
seen and new data apart, keeps its best evaluation's weights and survives a restart with them.
Data are the FASTQ tiles ingest writes, in HealthOmics read-set folders."""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evaluation import EvalSet, evaluate
from hyenadna import HyenaDNAForCausalLM
from pipeline.ingest.fasta_stream import FastaToFastq
from sequence_data import WindowCorpus, load_records

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "training_job" / "train.py"
LAMBDA_ID, PHIX_ID = "gi|9626243|ref|NC_001416.1|", "1"
SMALL = ["--max-length", "128", "--batch-size", "4", "--log-interval", "2", "--eval-windows", "0"]

pytestmark = pytest.mark.slow


def read_set(genome: str, folder: Path) -> None:
    converter = FastaToFastq()
    tiles = converter.feed((REPO / "data" / genome).read_bytes()) + converter.finish()[0]
    folder.mkdir(parents=True)
    (folder / "tiles.fastq.gz").write_bytes(gzip.compress(tiles))


def train(data: Path, model_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(TRAIN), "--data", str(data), "--model-dir", str(model_dir), *SMALL, *extra]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def metrics_of(model_dir: Path) -> dict:
    return json.loads((model_dir / "metrics.json").read_text())


def best_fields(stdout: str) -> dict[str, float]:
    (line,) = [line for line in stdout.splitlines() if line.startswith("[best] ")]
    return {key: float(value) for key, value in re.findall(r" (\w+)=(\S+)", line)}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("continued")
    read_set("lambda_phage_NC_001416.fa", root / "lambda" / "readSet" / "1000000001")
    read_set("lambda_phage_NC_001416.fa", root / "both" / "readSet" / "1000000001")
    read_set("phix174_NC_001422.fa", root / "both" / "readSet" / "1000000002")
    job1 = train(root / "lambda", root / "job1", "--max-steps", "20", "--eval-interval", "10")
    job2 = train(root / "both", root / "job2", "--init-from", str(root / "job1"), "--max-steps", "10")
    job3_args = (
        *("--init-from", str(root / "job2"), "--learning-rate", "0.5", "--max-steps", "40"),
        *("--eval-interval", "2", "--early-stopping-patience", "3"),
        *("--checkpoint-interval", "2", "--keep-checkpoints", "40"),
    )
    job3 = train(root / "both", root / "job3", *job3_args)
    return {"root": root, "job1": job1, "job2": job2, "job3": job3, "job3_args": job3_args}


def test_warm_start_measures_the_starting_model_at_step_0_before_any_update(jobs):
    lines = jobs["job2"].stdout.splitlines()
    first_train = next(i for i, line in enumerate(lines) if line.startswith("[train]"))
    step_0 = [line.split()[:2] for line in lines[:first_train]]
    assert step_0 == [["[eval]", "step=0"], ["[eval:seen]", "step=0"], ["[eval:new]", "step=0"]]
    assert "[eval] step=0" not in jobs["job1"].stdout  # a cold start has nothing to compare with
    metrics = metrics_of(jobs["root"] / "job2")
    assert metrics["history"]["eval"][0]["step"] == 0
    assert metrics["baseline_eval_loss"] == metrics["history"]["eval"][0]["loss"]
    assert metrics["baseline_eval_perplexity"] == pytest.approx(math.exp(metrics["baseline_eval_loss"]))
    assert f"[eval] step=0 loss={metrics['baseline_eval_loss']:.6f}" in jobs["job2"].stdout


def test_the_baseline_on_seen_data_is_the_starting_model_on_its_own_held_out_blocks(jobs):
    job1, job2 = metrics_of(jobs["root"] / "job1"), metrics_of(jobs["root"] / "job2")
    seen, new = job2["eval_by_source"]["seen"], job2["eval_by_source"]["new"]
    # Lambda's held-out blocks did not move when phiX174 arrived: job 1's own figure, measured again.
    assert seen["baseline_eval_loss"] == pytest.approx(job1["eval_loss"], abs=1e-6)
    assert (seen["records"], seen["bases"], new["records"], new["bases"]) == (1, 1024, 1, 1024)
    assert job2["eval_bases"] == 2048 and job1["eval_bases"] == 1024
    # Never-seen phiX174 is harder for the starting model than the genome it was trained on.
    assert new["baseline_eval_loss"] > seen["baseline_eval_loss"]


def test_the_artifact_records_every_genome_the_model_was_trained_on_cumulatively(jobs):
    def trained_on(job: str) -> list[str]:
        return json.loads((jobs["root"] / job / "training_data.json").read_text())["trained_on"]

    assert trained_on("job1") == [LAMBDA_ID]
    assert trained_on("job2") == sorted([LAMBDA_ID, PHIX_ID])
    # Job 3's starting model had seen both genomes: all of its data is "seen".
    assert set(metrics_of(jobs["root"] / "job3")["eval_by_source"]) == {"seen"}


def test_best_line_carries_candidate_baseline_and_per_source_figures_of_metrics_json(jobs):
    metrics = metrics_of(jobs["root"] / "job2")
    fields = best_fields(jobs["job2"].stdout)
    assert fields["step"] == metrics["best_step"]
    for key in ("eval_perplexity", "baseline_eval_perplexity", "final_eval_perplexity"):
        assert fields[key] == pytest.approx(metrics[key], abs=1e-6)
    for source in ("seen", "new"):
        for key in ("eval_perplexity", "baseline_eval_perplexity"):
            assert fields[f"{source}_{key}"] == pytest.approx(
                metrics["eval_by_source"][source][key], abs=1e-6
            )
    assert "baseline_eval_perplexity" not in best_fields(jobs["job1"].stdout)


def test_artifact_holds_the_best_evaluation_weights_not_the_last(jobs):
    model_dir = jobs["root"] / "job3"
    metrics = metrics_of(model_dir)
    candidates = [e for e in metrics["history"]["eval"] if e["step"] > 0]
    best = min(candidates, key=lambda e: e["loss"])
    assert (metrics["best_step"], metrics["eval_loss"]) == (best["step"], best["loss"])
    assert metrics["final_eval_loss"] > metrics["eval_loss"]  # the last weights were worse

    corpus = WindowCorpus(load_records(jobs["root"] / "both"), max_length=128, val_fraction=0.05)
    eval_set = EvalSet.build(corpus, None, seen_records={LAMBDA_ID, PHIX_ID})
    reloaded = evaluate(
        HyenaDNAForCausalLM.from_pretrained(model_dir),
        corpus,
        eval_set,
        step=metrics["best_step"],
        batch_size=4,
        device=torch.device("cpu"),
        autocast=contextlib.nullcontext(),
        rank=0,
        world=1,
    )
    assert reloaded.loss == pytest.approx(metrics["eval_loss"], abs=1e-5)


def test_a_far_too_high_learning_rate_does_not_beat_its_baseline_even_with_its_best_weights(jobs):
    metrics = metrics_of(jobs["root"] / "job3")
    # The baseline (step 0) is never a candidate: the job must report its own best, which is worse.
    assert metrics["best_step"] > 0
    assert metrics["eval_perplexity"] > metrics["baseline_eval_perplexity"]


def test_early_stopping_ends_the_job_after_patience_evaluations_without_a_new_best(jobs):
    metrics = metrics_of(jobs["root"] / "job3")
    assert metrics["stopped_early"] and metrics["steps"] < 40
    assert metrics["steps"] == metrics["best_step"] + 3 * 2  # 3 evaluations, 2 steps apart
    assert metrics["history"]["eval"][-1]["step"] == metrics["steps"]


def test_a_warm_start_restarted_after_its_best_evaluation_ends_with_the_same_weights_and_metrics(jobs):
    root, whole = jobs["root"], metrics_of(jobs["root"] / "job3")
    resume_step = whole["best_step"] + 2  # the next checkpoint: best weights and baseline live only in it
    assert resume_step < whole["steps"]
    restarted = root / "job3_restarted"
    (restarted / "checkpoints").mkdir(parents=True)
    shutil.copy(root / "job3" / "checkpoints" / f"checkpoint-{resume_step:08d}.pt", restarted / "checkpoints")

    run = train(root / "both", restarted, *jobs["job3_args"])

    assert f"(step {resume_step})" in run.stderr and "[eval] step=0" not in run.stdout
    again = metrics_of(restarted)
    for timing in ("train_seconds_this_run", "steps_this_run"):
        del again[timing], whole[timing]
    assert again == whole
    assert (restarted / "model.safetensors").read_bytes() == (
        root / "job3" / "model.safetensors"
    ).read_bytes()
