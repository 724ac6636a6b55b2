"""The training budgets of the end-to-end tests: short, but enough to learn something.

The quality gate deploys a first model only if its eval perplexity is below 4.0 (A, C, G, T
equally likely), so even a plumbing test must train a model that learnt something. Keys are
start_training's function variables (template.yaml), set on the local stack through
`local_environment_overrides(...)` in process, or as `HYENAFLOW_LOCAL_<VAR>` variables of
`hyenaflow local up`.

Measured on lambda phage with train.py's defaults otherwise (seed 1337, 2 cores at load ~9):
- LEARNING_TRAINING, 32 steps x 4 windows x 256 bases after a 4-step warmup: eval perplexity
  3.897 / 3.829 at steps 16 / 32 (9 s of training on 2 idle cores, 2026-11-29);
- DEMO_TEST_STEPS, the demo's three jobs with 25 steps each: 3.824 (cold start), then 3.851
  against a baseline of 3.896 (lambda + phiX174, warm start; seen data 3.824 -> 3.792), then
  5.6e20 against 3.851 (learning rate 0.5): Approved, Approved, Rejected (~2 min per job).
"""

from __future__ import annotations

import json

from hyenaflow.local.pipeline import LOCAL_OVERRIDE_PREFIX

DEMO_TEST_STEPS = 25  # `hyenaflow demo --train-steps 25`: the demo's story, shorter


# Enough for the tiny model to learn lambda phage's bases (uniform over ACGT: 4.0; the untrained
# model: ~12): the one budget of the tests that deploy a first model.
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
