"""Multi-GPU instances train on every GPU: torchrun (torch_distributed) whenever more than one
process can train, from the GPU table in pipeline/training/instance_gpus.py."""

from __future__ import annotations

import botocore.session
import pytest

from pipeline.settings import load_settings
from pipeline.training.instance_gpus import GPUS_PER_TRAINING_INSTANCE, gpus_per_instance, training_launch
from pipeline.training.job_request import build_training_request
from pipeline.training.settings import TrainingSettings
from tests.support.training_env import TRAINING_FUNCTION_ENV

TORCHRUN = "sagemaker_torch_distributed_enabled"
ENV = TRAINING_FUNCTION_ENV


def _hyperparameters(instance_type: str, count: int) -> dict[str, str]:
    settings = load_settings(
        TrainingSettings,
        {**ENV, "TRAINING_INSTANCE_TYPE": instance_type, "TRAINING_INSTANCE_COUNT": str(count)},
    )
    request = build_training_request(
        settings,
        job_name="j",
        trigger="t",
        read_sets_s3_uri="s3://x/",
        warm_start_model_uri=None,
        region=None,
    )
    return request["HyperParameters"]


@pytest.mark.parametrize(
    ("instance_type", "gpus"),
    [
        ("ml.p4d.24xlarge", 8),  # the docs' suggestion for big runs
        ("ml.p5.48xlarge", 8),
        ("ml.g5.12xlarge", 4),
        ("ml.g5.48xlarge", 8),
        ("ml.g4dn.12xlarge", 4),
        ("ml.g6e.24xlarge", 4),
        ("ml.p3.8xlarge", 4),
    ],
)
def test_one_multi_gpu_instance_launches_torchrun(instance_type: str, gpus: int) -> None:
    assert gpus_per_instance(instance_type) == gpus
    assert _hyperparameters(instance_type, 1)[TORCHRUN] == "true"


@pytest.mark.parametrize("instance_type", ["ml.g5.xlarge", "ml.g5.2xlarge", "ml.p3.2xlarge", "ml.m5.xlarge"])
def test_one_single_gpu_or_cpu_instance_runs_one_process(instance_type: str) -> None:
    assert TORCHRUN not in _hyperparameters(instance_type, 1)
    assert training_launch(instance_type, 1).note is None


def test_several_instances_launch_torchrun_whatever_their_gpus() -> None:
    assert _hyperparameters("ml.g5.xlarge", 2)[TORCHRUN] == "true"
    assert _hyperparameters("ml.m5.xlarge", 3)[TORCHRUN] == "true"


def test_an_unknown_instance_type_trains_as_one_process_and_says_why() -> None:
    launch = training_launch("ml.g7e.48xlarge", 1)
    assert launch.torchrun is False and launch.gpus_per_instance is None
    assert "ml.g7e.48xlarge" in launch.note and "GPUS_PER_TRAINING_INSTANCE" in launch.note
    assert TORCHRUN not in _hyperparameters("ml.g7e.48xlarge", 1)


def test_cpu_families_are_known_to_have_no_gpus() -> None:
    for instance_type in (
        "ml.m5.xlarge",
        "ml.c5.18xlarge",
        "ml.r7i.48xlarge",
        "ml.m7i-flex.large",
        "ml.t3.medium",
    ):
        assert gpus_per_instance(instance_type) == 0, instance_type


def test_the_table_names_only_training_instance_types_sagemaker_accepts() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    accepted = set(model.shape_for("TrainingInstanceType").enum)
    assert set(GPUS_PER_TRAINING_INSTANCE) <= accepted, set(GPUS_PER_TRAINING_INSTANCE) - accepted
    # every accepted CPU-only family is recognised as such (no warning for plain CPU training)
    cpu = {t for t in accepted if t.split(".")[1][0] in "cmrt" and not t.startswith("ml.trn")}
    assert {t for t in cpu if gpus_per_instance(t) != 0} == set()
