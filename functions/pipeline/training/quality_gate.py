"""Deploy a new model only if it is no worse than the one serving (eval perplexity, lower is better)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pipeline.training.metrics import EVAL_PERPLEXITY


@dataclass(frozen=True)
class GateDecision:
    accepted: bool
    reason: str
    candidate: float | None
    reference: float | None


def final_metric(training_job: dict[str, Any], name: str = EVAL_PERPLEXITY) -> float | None:
    """The last value SageMaker recorded for `name` (FinalMetricDataList), or None."""
    for item in training_job.get("FinalMetricDataList", []):
        if item.get("MetricName") == name:
            return float(item["Value"])
    return None


def quality_gate(candidate: float | None, reference: float | None, margin: float) -> GateDecision:
    if candidate is None or not math.isfinite(candidate):
        return GateDecision(
            False,
            f"the job reported no finite {EVAL_PERPLEXITY} (check train.py's [eval] lines and the metric regexes)",
            candidate,
            reference,
        )
    if reference is None:
        return GateDecision(True, "no model is serving yet", candidate, reference)
    limit = reference * (1.0 + margin)
    if candidate <= limit:
        return GateDecision(
            True,
            f"{EVAL_PERPLEXITY} {candidate:.4f} <= {limit:.4f} (serving {reference:.4f})",
            candidate,
            reference,
        )
    return GateDecision(
        False,
        f"{EVAL_PERPLEXITY} {candidate:.4f} > {limit:.4f} (serving {reference:.4f}, margin {margin:.2%}); endpoint kept",
        candidate,
        reference,
    )
