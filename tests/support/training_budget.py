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


def as_local_up_environment(function_variables: dict[str, str]) -> dict[str, str]:
    """The same variables as `hyenaflow local up` takes them from its environment."""
    return {LOCAL_OVERRIDE_PREFIX + name: value for name, value in function_variables.items()}
