"""start_training's pure parts: job names, settings validation, the CreateTrainingJob request."""

from __future__ import annotations

import pytest

from pipeline.training.job_request import build_training_request
from pipeline.training.metrics import METRIC_DEFINITIONS
from pipeline.training.sagemaker_names import SAGEMAKER_NAME_PATTERN, sagemaker_name
from pipeline.training.settings import TrainingSettings
from tests.support.training_env import TRAINING_FUNCTION_ENV

BASE_ENV = TRAINING_FUNCTION_ENV


def _settings(**overrides: str) -> TrainingSettings:
    from pipeline.settings import load_settings

    return load_settings(TrainingSettings, {**BASE_ENV, **overrides})


@pytest.mark.parametrize(
    ("prefix", "suffix"),
    [
        ("hyenaflow", "4000000001"),
        ("hyenaflow", "9" * 36),  # the longest import job id: hashed down to 63 characters
        ("my_stack", "a/b:c"),
        ("x" * 31, "y" * 40),
    ],
)
def test_job_names_are_valid_for_sagemaker_and_stable(prefix: str, suffix: str) -> None:
    name = sagemaker_name(prefix, suffix)
    assert SAGEMAKER_NAME_PATTERN.match(name) and len(name) <= 63
    assert sagemaker_name(prefix, suffix) == name  # replays derive the same name


def test_long_names_stay_distinct() -> None:
    assert sagemaker_name("hyenaflow", "9" * 36) != sagemaker_name("hyenaflow", "9" * 35 + "8")


def test_request_has_spot_checkpoints_metrics_and_the_training_knobs() -> None:
    settings = _settings(
        MAX_STEPS="50", MAX_LENGTH="2048", BATCH_SIZE="4", LEARNING_RATE="0.001", MODEL_SIZE="small"
    )
    request = build_training_request(
        settings,
        job_name="hyenaflow-4000000001",
        trigger="4000000001",
        read_sets_s3_uri="s3://ap-alias/123/sequenceStore/1234567890/",
        warm_start_model_uri="s3://data-bucket/models/hyenaflow-1/output/model.tar.gz",
        region="us-east-1",
    )

    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 172800}
    assert request["CheckpointConfig"]["S3Uri"] == "s3://data-bucket/checkpoints/hyenaflow-4000000001/"
    assert (
        request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
        == "s3://ap-alias/123/sequenceStore/1234567890/"
    )
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    # A warm start is sent no learning rate: train.py's warm-start defaults apply (contracts.md).
    assert request["HyperParameters"] == {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": "s3://data-bucket/code/training/sourcedir.tar.gz",
        "sagemaker_region": "us-east-1",
        "max_steps": "50",
        "max_length": "2048",
        "batch_size": "4",
        "model_size": "small",
        "init_from": "s3://data-bucket/models/hyenaflow-1/output/model.tar.gz",
    }
    assert all(isinstance(v, str) for v in request["HyperParameters"].values())  # SageMaker's rule


def _hyperparameters(settings: TrainingSettings, warm_start: str | None) -> dict[str, str]:
    return build_training_request(
        settings,
        job_name="j",
        trigger="t",
        read_sets_s3_uri="s3://x/",
        warm_start_model_uri=warm_start,
        region=None,
    )["HyperParameters"]


def test_cold_start_gets_the_learning_rate_a_warm_start_gets_the_warm_start_settings_if_set() -> None:
    warm_from = "s3://data-bucket/models/hyenaflow-1/output/model.tar.gz"
    tuned = _settings(LEARNING_RATE="0.002", WARM_START_LEARNING_RATE="0.0003", WARM_START_WARMUP_STEPS="5")

    cold = _hyperparameters(tuned, None)
    warm = _hyperparameters(tuned, warm_from)
    warm_defaults = _hyperparameters(_settings(WARM_START_LEARNING_RATE=""), warm_from)  # template default

    assert cold["learning_rate"] == "0.002" and "warm_start_learning_rate" not in cold
    assert "learning_rate" not in warm and "warmup_steps" not in warm
    assert (warm["warm_start_learning_rate"], warm["warm_start_warmup_steps"]) == ("0.0003", "5")
    assert not {"learning_rate", "warmup_steps", "warm_start_learning_rate"} & set(warm_defaults)


def test_hyperparameter_overrides_come_last_and_win_cold_or_warm() -> None:
    settings = _settings(
        LEARNING_RATE="0.002", TRAINING_EXTRA_HYPERPARAMETERS='{"learning_rate": "0.5", "max_steps": 40}'
    )

    warm = _hyperparameters(settings, "s3://data-bucket/models/hyenaflow-1/output/model.tar.gz")
    cold = _hyperparameters(settings, None)

    assert (warm["learning_rate"], warm["max_steps"]) == ("0.5", "40")
    assert (cold["learning_rate"], cold["max_steps"]) == ("0.5", "40")


def test_on_demand_distributed_request_has_no_spot_wait_and_enables_torch_distributed() -> None:
    settings = _settings(USE_SPOT="false", TRAINING_INSTANCE_COUNT="2")
    request = build_training_request(
        settings,
        job_name="j",
        trigger="t",
        read_sets_s3_uri="s3://x/",
        warm_start_model_uri=None,
        region=None,
    )
    assert request["EnableManagedSpotTraining"] is False
    assert "MaxWaitTimeInSeconds" not in request["StoppingCondition"]
    assert request["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert "init_from" not in request["HyperParameters"]


def test_extra_hyperparameters_come_from_json() -> None:
    settings = _settings(TRAINING_EXTRA_HYPERPARAMETERS='{"eval_interval": 200, "precision": "bf16"}')
    assert settings.training_extra_hyperparameters == {"eval_interval": "200", "precision": "bf16"}


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"SEQUENCE_STORE_ID": "abc"}, "SEQUENCE_STORE_ID"),
        ({"TRAINING_SOURCE_URI": "/local/path"}, "TRAINING_SOURCE_URI"),
        ({"MAX_RUNTIME_SECONDS": "3600", "MAX_WAIT_SECONDS": "600"}, "MAX_WAIT_SECONDS must be >="),
        ({"MODEL_SIZE": "huge"}, "MODEL_SIZE"),
    ],
)
def test_bad_configuration_fails_at_cold_start_naming_the_variable(overrides: dict, complaint: str) -> None:
    with pytest.raises(RuntimeError, match=complaint):
        _settings(**overrides)


def test_missing_variable_is_named() -> None:
    from pipeline.settings import load_settings

    env = dict(BASE_ENV)
    del env["SAGEMAKER_ROLE_ARN"]
    with pytest.raises(RuntimeError, match="SAGEMAKER_ROLE_ARN"):
        load_settings(TrainingSettings, env)


def test_region_for_train_py_is_the_one_the_lambda_runtime_sets() -> None:
    assert _settings(AWS_REGION="eu-west-1").aws_region == "eu-west-1"
    assert _settings().aws_region is None  # outside Lambda the request carries no sagemaker_region
