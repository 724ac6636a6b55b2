"""train.py's command line: SageMaker's hyperparameter convention, paths, and the LR schedule."""

from __future__ import annotations

import math

import pytest

import train


@pytest.fixture
def no_sagemaker_env(monkeypatch):
    for name in (
        "SM_MODEL_DIR",
        "SM_OUTPUT_DATA_DIR",
        "SM_CHANNEL_TRAIN",
        "SM_CHANNEL_MODEL",
        "SM_CHECKPOINT_DIR",
        "SM_TENSORBOARD_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


def test_sagemaker_hyperparameters_with_underscores_parse_and_sagemaker_keys_are_ignored(
    monkeypatch, no_sagemaker_env
):
    monkeypatch.setenv("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")
    args = train.parse_args(
        [
            "--sagemaker_program",
            "train.py",
            "--max_steps",
            "500",
            "--sagemaker_submit_directory",
            "s3://bucket/code/sourcedir.tar.gz",
            "--learning_rate",
            "0.0006",
            "--model_size",
            "small",
            "--sagemaker_torch_distributed_enabled=true",
            "--init_from",
            "s3://bucket/models/job-1/output/model.tar.gz",
            "--compile",
            "false",
        ]
    )
    assert (args.max_steps, args.learning_rate, args.model_size, args.compile) == (
        500,
        0.0006,
        "small",
        False,
    )
    assert args.data == "/opt/ml/input/data/train"
    assert args.model_dir == "/opt/ml/model"
    assert args.init_from == "s3://bucket/models/job-1/output/model.tar.gz"
    assert args.checkpoint_dir == "/opt/ml/checkpoints"
    assert args.tensorboard_dir == "/opt/ml/output/tensorboard"


def test_unknown_hyperparameter_is_an_error_not_silently_ignored(no_sagemaker_env):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "x.fa", "--max_stepz", "3"])


def test_local_stack_job_keeps_checkpoints_and_tensorboard_in_its_own_folder(
    monkeypatch, tmp_path, no_sagemaker_env
):
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "input" / "data" / "train"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output" / "data"))
    args = train.parse_args([])
    assert args.checkpoint_dir == str(tmp_path / "output" / "checkpoints")
    assert args.tensorboard_dir == str(tmp_path / "output" / "data" / "tensorboard")


def test_plain_cli_defaults_put_everything_under_the_model_dir(no_sagemaker_env):
    args = train.parse_args(["--data", "genome.fa", "--model-dir", "out"])
    assert (args.checkpoint_dir, args.tensorboard_dir) == ("out/checkpoints", "out/tensorboard")
    assert args.max_length == train.DEFAULTS["max_length"] and args.model_size == "tiny"


def test_warm_start_takes_the_continued_pretraining_learning_rate_and_warmup_unless_given(no_sagemaker_env):
    cold = train.parse_args(["--data", "genome.fa"])
    assert (cold.learning_rate, cold.warmup_steps) == (
        train.DEFAULTS["learning_rate"],
        train.DEFAULTS["warmup_steps"],
    )
    warm = train.parse_args(["--data", "genome.fa", "--init-from", "s3://bucket/model.tar.gz"])
    assert (warm.learning_rate, warm.warmup_steps) == (
        train.DEFAULTS["warm_start_learning_rate"],
        train.DEFAULTS["warm_start_warmup_steps"],
    )
    assert warm.learning_rate < cold.learning_rate
    explicit = train.parse_args(
        ["--data", "genome.fa", "--init-from", "model/", "--learning_rate", "0.5", "--warmup_steps", "0"]
    )
    assert (explicit.learning_rate, explicit.warmup_steps) == (0.5, 0)
    tuned = train.parse_args(["--data", "g.fa", "--init-from", "m/", "--warm-start-learning-rate", "2e-4"])
    assert tuned.learning_rate == 2e-4


def test_warm_start_from_the_sagemaker_model_channel_uses_the_warm_start_defaults(
    monkeypatch, no_sagemaker_env
):
    monkeypatch.setenv("SM_CHANNEL_MODEL", "/opt/ml/input/data/model")
    args = train.parse_args(["--data", "genome.fa"])
    assert args.init_from == "/opt/ml/input/data/model"
    assert args.learning_rate == train.DEFAULTS["warm_start_learning_rate"]


def test_missing_data_says_how_to_give_it(no_sagemaker_env, capsys):
    with pytest.raises(SystemExit):
        train.parse_args([])
    assert "--data is required" in capsys.readouterr().err


def test_learning_rate_warms_up_linearly_then_follows_a_cosine_to_the_floor():
    factors = [train.lr_factor(step, warmup_steps=10, max_steps=110, min_lr_ratio=0.1) for step in range(111)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert factors[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_latest_checkpoint_is_the_highest_step_and_temporary_files_are_ignored(tmp_path):
    for name in ("checkpoint-00000100.pt", "checkpoint-00000020.pt", "checkpoint-00000200.pt.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert train.latest_checkpoint(tmp_path).name == "checkpoint-00000100.pt"
    assert train.latest_checkpoint(tmp_path / "none") is None
