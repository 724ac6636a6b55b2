"""SageMaker metric_definitions for the log lines train.py prints (docs/contracts.md):

    [train] step=120 loss=1.234500 perplexity=3.437100 tokens_per_s=5230.1 lr=0.000500
    [eval] step=120 loss=1.300000 perplexity=3.669300
    [best] step=100 eval_loss=... eval_perplexity=... baseline_eval_perplexity=... seen_eval_perplexity=...

SageMaker applies each regex to every log line and records the first group as the metric; its
FinalMetricDataList keeps the last value of each. The quality gate reads the `best:*` metrics:
`[best]` is printed once, at the end, with the figures of the weights the artifact holds (the
candidate) and of the starting model on the same held-out data (the baseline). `eval:perplexity`
is only the last evaluation, which need not be the kept weights.

Names and regexes fit botocore's MetricDefinition shape (Name 1-255 characters, Regex 1-500; at
most 40 definitions per job). The local SageMaker runner applies the same list.
"""

from __future__ import annotations

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf)"


def best_field_regex(key: str) -> str:
    """The contract's regex for one `[best]` field: `\\b` keeps `eval_perplexity=` from matching
    inside `baseline_eval_perplexity=` (`_` is a word character)."""
    return rf"\[best\] .*?\b{key}={_NUMBER}"


# `[best]` field -> metric name. Perplexities only: the gate compares perplexities, and
# perplexity = exp(loss), so a loss would say the same thing again.
BEST_FIELDS = {
    "eval_perplexity": "best:eval_perplexity",
    "baseline_eval_perplexity": "best:baseline_eval_perplexity",
    "seen_eval_perplexity": "best:seen_eval_perplexity",
    "seen_baseline_eval_perplexity": "best:seen_baseline_eval_perplexity",
    "new_eval_perplexity": "best:new_eval_perplexity",
    "new_baseline_eval_perplexity": "best:new_baseline_eval_perplexity",
}

METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": "train:loss", "Regex": rf"\[train\] step=\d+ loss={_NUMBER}"},
    {"Name": "train:perplexity", "Regex": rf"\[train\] step=\d+ .*?perplexity={_NUMBER}"},
    {"Name": "train:tokens_per_s", "Regex": rf"\[train\] step=\d+ .*?tokens_per_s={_NUMBER}"},
    {"Name": "eval:loss", "Regex": rf"\[eval\] step=\d+ loss={_NUMBER}"},
    {"Name": "eval:perplexity", "Regex": rf"\[eval\] step=\d+ .*?perplexity={_NUMBER}"},
    {"Name": "best:step", "Regex": r"\[best\] step=(\d+)"},
    *({"Name": name, "Regex": best_field_regex(key)} for key, name in BEST_FIELDS.items()),
]

# What the quality gate compares (docs/contracts.md, "Model artifact").
CANDIDATE = BEST_FIELDS["eval_perplexity"]
BASELINE = BEST_FIELDS["baseline_eval_perplexity"]
SEEN_CANDIDATE = BEST_FIELDS["seen_eval_perplexity"]
SEEN_BASELINE = BEST_FIELDS["seen_baseline_eval_perplexity"]
NEW_CANDIDATE = BEST_FIELDS["new_eval_perplexity"]
NEW_BASELINE = BEST_FIELDS["new_baseline_eval_perplexity"]
BEST_STEP = "best:step"
