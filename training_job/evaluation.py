"""What a training job measures and which weights it keeps (docs/contracts.md, "Training job").

- The evaluation set is every held-out window of the job's data (sequence_data: the stable
  split), each window tagged with its data source: "seen" when the starting model was trained on
  its record, "new" otherwise. A cold start has no starting model, so everything is "new" and
  only the overall figure is reported.
- A warm-started job first measures the weights it starts from on that set (step 0): the
  baseline, i.e. the model it would replace, on exactly the data the candidate is measured on.
  The baseline is a measurement, never a candidate.
- The candidate is the evaluation with the lowest loss after step 0; its weights go into the
  artifact (not the last ones: a continued-pretraining run can overfit a small genome), and
  `--early-stopping-patience` evaluations without a new best end the job early.

Losses are token-weighted means of the next-base cross-entropy (nats per base) over the windows,
summed per source on each process and all-reduced, so any number of processes gives the same
figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from sequence_data import IGNORE_INDEX, WindowCorpus

SOURCES = ("seen", "new")  # data the starting model was trained on / everything else


@dataclass(frozen=True)
class EvalSet:
    """The evaluation windows (rows for WindowCorpus.gather) and the source of each."""

    windows: np.ndarray  # int64 [n, 3]
    source: np.ndarray  # int64 [n], index into SOURCES
    bases: dict[str, int]  # held-out bases evaluated, per source
    records: dict[str, int]  # records with evaluated bases, per source

    @classmethod
    def build(cls, corpus: WindowCorpus, max_windows: int | None, seen_records: set[str]) -> EvalSet:
        windows = corpus.val_windows(max_windows)
        record = corpus.record_index(windows[:, 0])
        is_seen = np.array([corpus.record_ids[r] in seen_records for r in record.tolist()], dtype=bool)
        source = np.where(is_seen, SOURCES.index("seen"), SOURCES.index("new")).astype(np.int64)
        return cls(
            windows=windows,
            source=source,
            bases={name: int(windows[source == i, 1].sum()) for i, name in enumerate(SOURCES)},
            records={name: len(set(record[source == i].tolist())) for i, name in enumerate(SOURCES)},
        )


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: overall loss and, where the set has them, the loss per source."""

    step: int
    loss: float
    by_source: dict[str, float] = field(default_factory=dict)

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss)

    def log_lines(self, with_sources: bool) -> list[str]:
        """`[eval] ...`, then `[eval:<source>] ...` per non-empty source (warm starts only)."""
        lines = [f"[eval] step={self.step} loss={self.loss:.6f} perplexity={self.perplexity:.6f}"]
        if with_sources:
            lines += [
                f"[eval:{name}] step={self.step} loss={loss:.6f} perplexity={math.exp(loss):.6f}"
                for name, loss in self.by_source.items()
            ]
        return lines

    def history_entry(self, with_sources: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"step": self.step, "loss": self.loss}
        if with_sources:
            entry["by_source"] = dict(self.by_source)
        return entry

    @classmethod
    def from_history(cls, entry: dict[str, Any]) -> Evaluation:
        return cls(entry["step"], entry["loss"], dict(entry.get("by_source", {})))


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    corpus: WindowCorpus,
    eval_set: EvalSet,
    *,
    step: int,
    batch_size: int,
    device: torch.device,
    autocast: Any,
    rank: int,
    world: int,
) -> Evaluation:
    """Token-weighted mean next-base loss, overall and per source (windows sharded over processes)."""
    model.eval()
    total = torch.zeros(len(SOURCES), 2, dtype=torch.float64, device=device)  # [source, (loss sum, tokens)]
    mine = np.arange(rank, len(eval_set.windows), world)
    for i in range(0, len(mine), batch_size):
        rows = mine[i : i + batch_size]
        input_ids, labels = (torch.from_numpy(a).to(device) for a in corpus.gather(eval_set.windows[rows]))
        with autocast:
            logits = model(input_ids=input_ids).logits
        # Next-base cross-entropy per position, as the model's own loss computes it (float32).
        targets = labels[:, 1:]
        per_base = F.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none"
        )
        sums = torch.stack([per_base.double().sum(1), (targets != IGNORE_INDEX).sum(1).double()], dim=1)
        total.index_add_(0, torch.from_numpy(eval_set.source[rows]).to(device), sums)
    if world > 1:
        dist.all_reduce(total)
    model.train()
    total = total.cpu()
    overall = total.sum(0)
    return Evaluation(
        step=step,
        loss=(overall[0] / overall[1]).item(),
        by_source={
            name: (total[i, 0] / total[i, 1]).item() for i, name in enumerate(SOURCES) if total[i, 1] > 0
        },
    )


class BestWeights:
    """The evaluation with the lowest loss after step 0 and its weights (a CPU copy, master only)."""

    def __init__(self) -> None:
        self.evaluation: Evaluation | None = None
        self.weights: dict[str, torch.Tensor] | None = None
        self.evals_without_improvement = 0

    def offer(self, evaluation: Evaluation, model: torch.nn.Module, keep_weights: bool) -> bool:
        """Keep `model`'s weights if `evaluation` is a new best; True if it is."""
        if evaluation.step == 0:  # the starting weights: the baseline, never a candidate
            return False
        if self.evaluation is not None and evaluation.loss >= self.evaluation.loss:
            self.evals_without_improvement += 1
            return False
        self.evaluation, self.evals_without_improvement = evaluation, 0
        if keep_weights:
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return True

    def patience_exhausted(self, patience: int) -> bool:
        return patience > 0 and self.evals_without_improvement >= patience

    def state_dict(self) -> dict[str, Any]:
        return {
            "evaluation": self.evaluation.history_entry(True) if self.evaluation else None,
            "weights": self.weights,
            "evals_without_improvement": self.evals_without_improvement,
        }

    def load_state_dict(self, state: dict[str, Any], keep_weights: bool) -> None:
        self.evaluation = Evaluation.from_history(state["evaluation"]) if state["evaluation"] else None
        self.weights = state["weights"] if keep_weights else None
        self.evals_without_improvement = state["evals_without_improvement"]


def _figures(prefix: str, loss: float | None) -> dict[str, float]:
    if loss is None:
        return {}
    return {f"{prefix}eval_loss": loss, f"{prefix}eval_perplexity": math.exp(loss)}


def evaluation_metrics(
    best: Evaluation, final: Evaluation, baseline: Evaluation | None, eval_set: EvalSet
) -> dict[str, Any]:
    """The metrics.json fields about evaluation (docs/contracts.md, "metrics.json")."""
    metrics: dict[str, Any] = {
        **_figures("", best.loss),
        "best_step": best.step,
        **_figures("final_", final.loss),
        **_figures("baseline_", baseline.loss if baseline else None),
        "eval_bases": sum(eval_set.bases.values()),
    }
    if baseline is not None:
        metrics["eval_by_source"] = {
            name: {
                "records": eval_set.records[name],
                "bases": eval_set.bases[name],
                **_figures("", best.by_source.get(name)),
                **_figures("baseline_", baseline.by_source.get(name)),
            }
            for name in SOURCES
            if eval_set.bases[name]
        }
    return metrics


def best_line(metrics: dict[str, Any]) -> str:
    """`[best] step=N eval_loss=... eval_perplexity=... ...`: the job's result on one line (see
    docs/contracts.md); every field is ` key=value`, fields absent when they do not apply."""
    fields = {
        key: metrics[key]
        for key in (
            "eval_loss",
            "eval_perplexity",
            "final_eval_loss",
            "final_eval_perplexity",
            "baseline_eval_loss",
            "baseline_eval_perplexity",
        )
        if key in metrics
    }
    for name, figures in metrics.get("eval_by_source", {}).items():
        for key in ("eval_loss", "eval_perplexity", "baseline_eval_loss", "baseline_eval_perplexity"):
            if key in figures:
                fields[f"{name}_{key}"] = figures[key]
    return f"[best] step={metrics['best_step']} " + " ".join(f"{k}={v:.6f}" for k, v in fields.items())
