"""The quality gate: deploy a job's model only if it beats the model serving, like with like.

A warm-started job measures the model it starts from (the serving model) and its own best
weights on the same held-out data (train.py's `[best]` line, read as `best:*` metrics from
FinalMetricDataList; docs/contracts.md). Lower perplexity is better. The gate accepts when

- regression: candidate <= baseline x (1 + QUALITY_GATE_MARGIN)   (default margin 0.0), and
- forgetting: on the held-out data of records the serving model was trained on ("seen"),
  candidate <= baseline x (1 + FORGETTING_TOLERANCE)             (default 0.02, i.e. +2 %).

A cold start (no baseline) is deployed only as the first model: when nothing serves yet and its
perplexity is finite and below 4.0, a model that knows nothing about DNA (A, C, G, T equally
likely). While a model serves, a job without a baseline, or whose baseline is another model
than the one serving, is refused: its figures cannot be compared with the serving model's.

Reasons are written in words with letters, digits, spaces and `_.:/=+-@` only, so the same
text fits the registry's CustomerMetadataProperties (model_registry.py) as well as the alert.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.training.metrics import (
    BASELINE,
    BEST_STEP,
    CANDIDATE,
    NEW_BASELINE,
    NEW_CANDIDATE,
    SEEN_BASELINE,
    SEEN_CANDIDATE,
)

UNIFORM_PERPLEXITY = 4.0  # each of A, C, G, T equally likely: a model that learnt nothing

# Which rule decided (the registry's GateCheck, the alert, `hyenaflow models`).
FIRST_MODEL = "first-model"
BEATS_BASELINE = "beats-baseline"
NO_METRIC = "no-metric"
NOT_BETTER_THAN_UNIFORM = "not-better-than-uniform"
NO_BASELINE = "no-baseline"
OTHER_BASELINE = "other-baseline"
REGRESSED = "regressed"
FORGOT = "forgot-seen-data"


@dataclass(frozen=True)
class GateFigures:
    """One job's evaluation figures (perplexities), from its `[best]` line."""

    candidate: float | None
    baseline: float | None = None
    seen_candidate: float | None = None
    seen_baseline: float | None = None
    new_candidate: float | None = None
    new_baseline: float | None = None
    best_step: int | None = None

    @classmethod
    def from_training_job(cls, training_job: dict[str, Any]) -> GateFigures:
        """From DescribeTrainingJob's FinalMetricDataList (the last value of each metric)."""
        final = {
            item["MetricName"]: float(item["Value"]) for item in training_job.get("FinalMetricDataList", [])
        }
        step = final.get(BEST_STEP)
        return cls(
            candidate=final.get(CANDIDATE),
            baseline=final.get(BASELINE),
            seen_candidate=final.get(SEEN_CANDIDATE),
            seen_baseline=final.get(SEEN_BASELINE),
            new_candidate=final.get(NEW_CANDIDATE),
            new_baseline=final.get(NEW_BASELINE),
            best_step=int(step) if step is not None and math.isfinite(step) else None,
        )


@dataclass(frozen=True)
class GateDecision:
    accepted: bool
    check: str
    reason: str
    figures: GateFigures
    margin: float
    forgetting_tolerance: float

    @property
    def approval_status(self) -> str:
        """The model package's ModelApprovalStatus."""
        return "Approved" if self.accepted else "Rejected"

    def record(self) -> dict[str, Any]:
        """The decision as plain values: state table, structured log, alert."""
        return {
            "decision": self.approval_status,
            "check": self.check,
            "reason": self.reason,
            **asdict(self.figures),
            "margin": self.margin,
            "forgetting_tolerance": self.forgetting_tolerance,
        }


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _f(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def quality_gate(
    figures: GateFigures,
    *,
    serving_model_data_url: str | None,
    warm_start_model_data_url: str | None,
    margin: float,
    forgetting_tolerance: float,
) -> GateDecision:
    """Decide on one job. `serving_model_data_url`: the model serving now (None: nothing serves);
    `warm_start_model_data_url`: the model the job started from (its `init_from`)."""

    def decide(accepted: bool, check: str, reason: str) -> GateDecision:
        return GateDecision(accepted, check, reason, figures, margin, forgetting_tolerance)

    candidate, baseline = figures.candidate, figures.baseline
    if not _finite(candidate):
        return decide(
            False,
            NO_METRIC,
            f"the job reported no finite best eval perplexity: {_f(candidate)} - check the [best] line of "
            "train.py in its log and the best:* metric definitions",
        )
    if serving_model_data_url is not None:
        if baseline is None:
            return decide(
                False,
                NO_BASELINE,
                f"a model serves but the job has no baseline: it did not start from the serving model "
                f"so its eval perplexity {_f(candidate)} was not measured against it on the same data",
            )
        if warm_start_model_data_url != serving_model_data_url:
            return decide(
                False,
                OTHER_BASELINE,
                f"the job started from {warm_start_model_data_url} but {serving_model_data_url} serves now: "
                "its baseline is not the serving model",
            )
    elif candidate >= UNIFORM_PERPLEXITY:
        return decide(
            False,
            NOT_BETTER_THAN_UNIFORM,
            f"eval perplexity {_f(candidate)} is not below {UNIFORM_PERPLEXITY} = A C G T equally likely: "
            "the model learnt nothing worth serving",
        )
    if baseline is None:
        return decide(
            True,
            FIRST_MODEL,
            f"first model: nothing serves yet and its eval perplexity {_f(candidate)} is below "
            f"{UNIFORM_PERPLEXITY} = A C G T equally likely",
        )
    limit = baseline * (1.0 + margin)
    if not _finite(baseline) or candidate > limit:
        return decide(
            False,
            REGRESSED,
            f"eval perplexity {_f(candidate)} is above its baseline {_f(baseline)} x {1 + margin:.2f} = "
            f"{_f(limit)} on the same held-out data: the serving model is better",
        )
    reason = (
        f"eval perplexity {_f(candidate)} is at most its baseline {_f(baseline)} x {1 + margin:.2f} = "
        f"{_f(limit)} on the same held-out data"
    )
    seen, seen_baseline = figures.seen_candidate, figures.seen_baseline
    if seen_baseline is not None:
        seen_limit = seen_baseline * (1.0 + forgetting_tolerance)
        if not _finite(seen) or not _finite(seen_baseline) or seen > seen_limit:
            return decide(
                False,
                FORGOT,
                f"forgetting: on data the serving model was trained on the eval perplexity rose to {_f(seen)} "
                f"above {_f(seen_baseline)} x {1 + forgetting_tolerance:.2f} = {_f(seen_limit)} although "
                f"overall it is {_f(candidate)} against {_f(baseline)}",
            )
        reason += (
            f" and on seen data {_f(seen)} is within {_f(seen_baseline)} x {1 + forgetting_tolerance:.2f}"
        )
    return decide(True, BEATS_BASELINE, reason)
