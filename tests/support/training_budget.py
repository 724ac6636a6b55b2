"""The training budget of the end-to-end tests: a few seconds of CPU training per job.

The tests prove the plumbing (a Completed job with metrics and a model that serves); the demo
shows learning. Keys are start_training's function variables (template.yaml), set on the local
stack through `local_environment_overrides(...)` in process, or as `HYENAFLOW_LOCAL_<VAR>`
variables of `hyenaflow local up`.
"""

from __future__ import annotations

import json

from hyenaflow.local.pipeline import LOCAL_OVERRIDE_PREFIX

TINY_TRAINING = {
    "MAX_STEPS": "8",
    "MAX_LENGTH": "128",
    "BATCH_SIZE": "4",
    "TRAINING_EXTRA_HYPERPARAMETERS": json.dumps(
        {"eval_interval": "4", "log_interval": "4", "eval_windows": "4"}
    ),
}


# Enough for the tiny model to learn lambda phage's bases, measured beyond doubt: 32 steps of
# 4 x 256 bases after a 4-step warmup reach eval perplexity 3.87 (uniform over ACGT: 4.0; the
# untrained model: ~12) in about 15 s of CPU training (docs/benchmarks.md, "Test suite").
LEARNING_TRAINING = {
    "MAX_STEPS": "32",
    "MAX_LENGTH": "256",
    "BATCH_SIZE": "4",
    "TRAINING_EXTRA_HYPERPARAMETERS": json.dumps(
        {"warmup_steps": "4", "eval_interval": "16", "log_interval": "8", "eval_windows": "8"}
    ),
}


def as_local_up_environment(function_variables: dict[str, str]) -> dict[str, str]:
    """The same variables as `hyenaflow local up` takes them from its environment."""
    return {LOCAL_OVERRIDE_PREFIX + name: value for name, value in function_variables.items()}
