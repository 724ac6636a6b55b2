"""The local stack's training budget: train.py's own defaults, the same for `local up` and `demo`."""

from __future__ import annotations

import pytest

import train
from hyenaflow.local.pipeline import local_environment_overrides
from hyenaflow.local.training_budget import BUDGET_VARIABLES
from tests.support.training_env import TRAINING_FUNCTION_ENV

# What `make demo` trains per job: 150 steps x 8 windows x 1024 bases of the tiny model.
DEMO_BUDGET = {
    "MAX_STEPS": "150",
    "MAX_LENGTH": "1024",
    "BATCH_SIZE": "8",
    "LEARNING_RATE": "0.003",
    "MODEL_SIZE": "tiny",
}


@pytest.fixture
def no_local_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in BUDGET_VARIABLES:
        monkeypatch.delenv(f"HYENAFLOW_LOCAL_{name}", raising=False)


def test_local_functions_get_the_demo_budget_and_no_spot(no_local_overrides: None) -> None:
    overrides = local_environment_overrides()

    assert {name: overrides[name] for name in BUDGET_VARIABLES} == DEMO_BUDGET
    assert overrides["USE_SPOT"] == "false"


def test_train_py_given_the_local_budget_trains_as_with_no_arguments(
    monkeypatch: pytest.MonkeyPatch, no_local_overrides: None
) -> None:
    monkeypatch.delenv("SM_CHANNEL_MODEL", raising=False)
    overrides = local_environment_overrides()
    # As start_training passes them: `--max_steps 150 --max_length 1024 ...`.
    passed = [
        item for name, argument in BUDGET_VARIABLES.items() for item in (f"--{argument}", overrides[name])
    ]

    with_budget = train.parse_args(["--data", "genome.fa", *passed])
    with_defaults = train.parse_args(["--data", "genome.fa"])

    assert vars(with_budget) == vars(with_defaults)


def test_a_local_warm_start_trains_with_train_py_warm_start_defaults(
    monkeypatch: pytest.MonkeyPatch, no_local_overrides: None
) -> None:
    from pipeline.settings import load_settings
    from pipeline.training.job_request import training_hyperparameters
    from pipeline.training.settings import TrainingSettings

    monkeypatch.delenv("SM_CHANNEL_MODEL", raising=False)
    environment = {**TRAINING_FUNCTION_ENV, **local_environment_overrides()}
    settings = load_settings(TrainingSettings, environment)
    hyperparameters = training_hyperparameters(
        settings, warm_start_model_uri="s3://data-bucket/models/job-1/output/model.tar.gz", region=None
    )
    # As the local SageMaker runner passes them: `--key value` for each non-sagemaker_ one.
    passed = [
        item
        for key, value in hyperparameters.items()
        if not key.startswith("sagemaker_")
        for item in (f"--{key}", value)
    ]

    args = train.parse_args(["--data", "genome.fa", *passed])

    assert args.learning_rate == train.DEFAULTS["warm_start_learning_rate"]
    assert args.warmup_steps == train.DEFAULTS["warm_start_warmup_steps"]


def test_environment_and_explicit_values_override_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYENAFLOW_LOCAL_MAX_STEPS", "200")
    monkeypatch.setenv("HYENAFLOW_LOCAL_BATCH_SIZE", "4")

    overrides = local_environment_overrides({"BATCH_SIZE": "2"})

    assert (overrides["MAX_STEPS"], overrides["BATCH_SIZE"], overrides["MAX_LENGTH"]) == ("200", "2", "1024")
