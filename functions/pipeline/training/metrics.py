"""SageMaker metric_definitions for the log lines train.py prints (docs/contracts.md):

    [train] step=120 loss=1.234500 perplexity=3.437100 tokens_per_s=5230.1 lr=0.000500
    [eval] step=120 loss=1.300000 perplexity=3.669300

SageMaker applies each regex to every log line and records the first group as the metric.
The local SageMaker runner applies the same list to produce FinalMetricDataList.
"""

from __future__ import annotations

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf)"

METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": "train:loss", "Regex": rf"\[train\] step=\d+ loss={_NUMBER}"},
    {"Name": "train:perplexity", "Regex": rf"\[train\] step=\d+ .*?perplexity={_NUMBER}"},
    {"Name": "train:tokens_per_s", "Regex": rf"\[train\] step=\d+ .*?tokens_per_s={_NUMBER}"},
    {"Name": "eval:loss", "Regex": rf"\[eval\] step=\d+ loss={_NUMBER}"},
    {"Name": "eval:perplexity", "Regex": rf"\[eval\] step=\d+ .*?perplexity={_NUMBER}"},
]

# The metric the deploy quality gate compares.
EVAL_PERPLEXITY = "eval:perplexity"
