"""What a training job measures and keeps (training_job/evaluation.py): the evaluation per data
source, the step-0 baseline that is never a candidate, the best weights, early stopping, and the
`[best]` line that SageMaker metric regexes read (docs/contracts.md)."""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path

import pytest
import torch

from evaluation import BestWeights, EvalSet, Evaluation, best_line, evaluate, evaluation_metrics
from hyenadna import HyenaDNAForCausalLM, config_for_size
from sequence_data import WindowCorpus, load_records

REPO = Path(__file__).resolve().parents[2]
LAMBDA_ID, PHIX_ID = "gi|9626243|ref|NC_001416.1|", "1"
# The regex docs/contracts.md gives for a `[best]` field `<key>`.
BEST_FIELD = r"\[best\] .*?\b{key}=([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf)"


@pytest.fixture(scope="module")
def corpus() -> WindowCorpus:
    records = load_records(REPO / "data" / "lambda_phage_NC_001416.fa") + load_records(
        REPO / "data" / "phix174_NC_001422.fa"
    )
    return WindowCorpus(records, max_length=256, val_fraction=0.05)


def tiny_model() -> HyenaDNAForCausalLM:
    torch.manual_seed(0)
    return HyenaDNAForCausalLM(config_for_size("tiny")).eval()


def test_windows_of_records_the_starting_model_was_trained_on_are_seen_the_rest_new(corpus):
    eval_set = EvalSet.build(corpus, None, seen_records={LAMBDA_ID, "not in this data"})
    assert eval_set.bases == {"seen": 1024, "new": 1024} and eval_set.records == {"seen": 1, "new": 1}
    cold = EvalSet.build(corpus, None, seen_records=set())
    assert cold.bases == {"seen": 0, "new": 2048}


def test_loss_per_source_is_the_model_loss_of_its_windows_and_the_overall_loss_their_token_mean(corpus):
    model = tiny_model()
    eval_set = EvalSet.build(corpus, None, seen_records={LAMBDA_ID})
    result = evaluate(
        model,
        corpus,
        eval_set,
        step=7,
        batch_size=3,
        device=torch.device("cpu"),
        autocast=contextlib.nullcontext(),
        rank=0,
        world=1,
    )
    model.eval()  # evaluate() hands the model back in training mode
    with torch.no_grad():
        per_source = {}
        for index, name in enumerate(("seen", "new")):
            input_ids, labels = corpus.gather(eval_set.windows[eval_set.source == index])
            per_source[name] = model(
                input_ids=torch.from_numpy(input_ids), labels=torch.from_numpy(labels)
            ).loss
    assert result.step == 7
    assert result.by_source == pytest.approx({k: v.item() for k, v in per_source.items()}, abs=1e-6)
    # Both sources have 4 full windows of 256 bases: the overall loss is their plain mean.
    assert result.loss == pytest.approx((result.by_source["seen"] + result.by_source["new"]) / 2, abs=1e-9)


def test_the_step_0_baseline_is_never_a_candidate_and_the_lowest_later_loss_wins():
    model = tiny_model()
    best = BestWeights()
    assert not best.offer(Evaluation(0, 0.5), model, keep_weights=True)  # baseline: a measurement only
    assert best.evaluation is None and best.weights is None
    assert best.offer(Evaluation(25, 1.40), model, keep_weights=True)
    weights_at_25 = {k: v.clone() for k, v in best.weights.items()}
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # training moves on
    assert not best.offer(Evaluation(50, 1.40), model, keep_weights=True)  # a tie is no improvement
    assert not best.offer(Evaluation(75, 1.45), model, keep_weights=True)
    assert best.evaluation.step == 25 and best.evals_without_improvement == 2
    assert all(torch.equal(best.weights[k], weights_at_25[k]) for k in weights_at_25)
    assert best.patience_exhausted(2) and not best.patience_exhausted(3) and not best.patience_exhausted(0)
    assert best.offer(Evaluation(100, 1.30, {"seen": 1.2}), model, keep_weights=False)
    assert best.evaluation.step == 100 and best.evals_without_improvement == 0


def test_best_weights_and_patience_survive_a_checkpoint_round_trip(tmp_path):
    model = tiny_model()
    best = BestWeights()
    best.offer(Evaluation(10, 1.3, {"seen": 1.2, "new": 1.5}), model, keep_weights=True)
    best.offer(Evaluation(20, 1.4, {"seen": 1.1, "new": 1.9}), model, keep_weights=True)
    torch.save({"best": best.state_dict()}, tmp_path / "checkpoint.pt")
    restored = BestWeights()
    restored.load_state_dict(
        torch.load(tmp_path / "checkpoint.pt", weights_only=True)["best"], keep_weights=True
    )
    assert restored.evaluation == Evaluation(10, 1.3, {"seen": 1.2, "new": 1.5})
    assert restored.evals_without_improvement == 1
    assert all(torch.equal(restored.weights[k], v) for k, v in best.weights.items())


def test_metrics_of_a_warm_start_hold_baseline_and_candidate_overall_and_per_source(corpus):
    eval_set = EvalSet.build(corpus, None, seen_records={LAMBDA_ID})
    baseline = Evaluation(0, 1.40, {"seen": 1.30, "new": 1.50})
    chosen = Evaluation(75, 1.35, {"seen": 1.31, "new": 1.39})
    final = Evaluation(150, 1.37, {"seen": 1.33, "new": 1.41})
    metrics = evaluation_metrics(chosen, final, baseline, eval_set)
    assert metrics["eval_loss"] == 1.35 and metrics["eval_perplexity"] == pytest.approx(math.exp(1.35))
    assert (metrics["best_step"], metrics["final_eval_loss"], metrics["baseline_eval_loss"]) == (
        75,
        1.37,
        1.40,
    )
    assert metrics["baseline_eval_perplexity"] == pytest.approx(math.exp(1.40))
    assert metrics["eval_by_source"]["seen"] == {
        "records": 1,
        "bases": 1024,
        "eval_loss": 1.31,
        "eval_perplexity": pytest.approx(math.exp(1.31)),
        "baseline_eval_loss": 1.30,
        "baseline_eval_perplexity": pytest.approx(math.exp(1.30)),
    }
    line = best_line(metrics)
    read = {
        key: float(re.search(BEST_FIELD.format(key=key), line).group(1))
        for key in (
            "eval_perplexity",
            "baseline_eval_perplexity",
            "final_eval_perplexity",
            "seen_eval_perplexity",
            "seen_baseline_eval_perplexity",
            "new_eval_perplexity",
            "new_baseline_eval_perplexity",
        )
    }
    assert line.startswith("[best] step=75 ")
    assert read == pytest.approx(
        {
            "eval_perplexity": math.exp(1.35),
            "baseline_eval_perplexity": math.exp(1.40),
            "final_eval_perplexity": math.exp(1.37),
            "seen_eval_perplexity": math.exp(1.31),
            "seen_baseline_eval_perplexity": math.exp(1.30),
            "new_eval_perplexity": math.exp(1.39),
            "new_baseline_eval_perplexity": math.exp(1.50),
        },
        abs=1e-5,
    )


def test_a_cold_start_reports_no_baseline_and_no_sources(corpus):
    eval_set = EvalSet.build(corpus, None, seen_records=set())
    metrics = evaluation_metrics(Evaluation(150, 1.32), Evaluation(150, 1.32), None, eval_set)
    assert "baseline_eval_loss" not in metrics and "eval_by_source" not in metrics
    line = best_line(metrics)
    assert re.search(BEST_FIELD.format(key="eval_perplexity"), line)
    assert not re.search(BEST_FIELD.format(key="baseline_eval_perplexity"), line)
    assert Evaluation(3, 1.0, {"new": 1.0}).log_lines(with_sources=False) == [
        "[eval] step=3 loss=1.000000 perplexity=2.718282"
    ]
