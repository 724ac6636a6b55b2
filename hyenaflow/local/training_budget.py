"""How much a training job trains on the local stack: train.py's own defaults, read from train.py.

In AWS, start_training passes `max_steps`, `max_length`, `batch_size` and `model_size`, and on a
cold start `learning_rate`, to train.py from its function variables (MAX_STEPS ...), which
template.yaml sets from its parameters (TrainingMaxSteps ...): a budget for GPUs. On this
machine's CPU the budget that fits is the one train.py is tuned for by default (150 steps x 8
windows x 1024 bases, tiny model: ~1.2M tokens, 2-3 minutes on two cores). start_training always
passes those values, so the local stack cannot simply pass nothing and let train.py's defaults
apply; instead it sets start_training's variables to the values of train.py's DEFAULTS. They are
read from train.py's source (importing it would import torch, which the local stack does not
need), so the local budget has one place: train.py's DEFAULTS.

LEARNING_RATE is the cold-start rate (DEFAULTS["learning_rate"]). A warm start is sent no
learning rate (docs/contracts.md, "Training job request"), so locally as in AWS it trains with
train.py's warm-start defaults (`warm_start_learning_rate`, `warm_start_warmup_steps`).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

TRAIN_SCRIPT = Path(__file__).resolve().parents[2] / "training_job" / "train.py"
# start_training's function variable (template.yaml) -> the train.py argument it becomes.
BUDGET_VARIABLES = {
    "MAX_STEPS": "max_steps",
    "MAX_LENGTH": "max_length",
    "BATCH_SIZE": "batch_size",
    "LEARNING_RATE": "learning_rate",
    "MODEL_SIZE": "model_size",
}


def train_script_defaults(path: Path = TRAIN_SCRIPT) -> dict[str, Any]:
    """The `DEFAULTS = {...}` dict literal of train.py."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "DEFAULTS" for target in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError(f"{path}: no `DEFAULTS = {{...}}` found; the local training budget is read from it")


def local_training_budget() -> dict[str, str]:
    """start_training's budget variables, set to train.py's defaults (MAX_STEPS -> "150" ...)."""
    defaults = train_script_defaults()
    return {variable: str(defaults[argument]) for variable, argument in BUDGET_VARIABLES.items()}
