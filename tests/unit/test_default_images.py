"""The default container images can run what the containers pip-install (transformers 5.23.0).

transformers declares its torch floor in its metadata (extra `torch`); on an older torch it
turns its PyTorch support off and HyenaDNA cannot be built (the old default, the PyTorch 2.5.1
images, did exactly that). The facts about each image (torch, Python, preinstalled packages)
live in hyenaflow/images.py with their sources; these tests hold them against transformers'
declared minimums and against the URIs image_uris resolves.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from hyenaflow.images import (
    INFERENCE_IMAGE,
    TRAINING_IMAGE,
    ContainerImage,
    inference_image_uri,
    training_image_uri,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_IMAGES = [TRAINING_IMAGE, INFERENCE_IMAGE]


def transformers_torch_extra_minimum(package: str) -> Version:
    """The `>=` floor transformers' metadata declares for `package` in its `torch` extra."""
    for line in importlib.metadata.requires("transformers") or []:
        requirement = Requirement(line)
        if (
            requirement.name == package
            and requirement.marker
            and requirement.marker.evaluate({"extra": "torch"})
        ):
            (floor,) = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
            return floor
    raise AssertionError(f"transformers declares no {package} in its torch extra")


def image_can_run_transformers(image: ContainerImage) -> list[str]:
    """What in `image` is older than transformers' declared minimums (empty: nothing)."""
    problems = []
    torch_floor = transformers_torch_extra_minimum("torch")
    if Version(image.torch) < torch_floor:
        problems.append(f"torch {image.torch} < {torch_floor}")
    for package, version in image.preinstalled.items():
        if version is not None and Version(version) < transformers_torch_extra_minimum(package):
            problems.append(f"{package} {version} < {transformers_torch_extra_minimum(package)}")
    return problems


def test_transformers_declares_the_floors_these_checks_read() -> None:
    assert importlib.metadata.version("transformers") == "5.23.0"
    assert transformers_torch_extra_minimum("torch") == Version("2.6")
    assert transformers_torch_extra_minimum("accelerate") == Version("1.1.0")


@pytest.mark.parametrize("image", DEFAULT_IMAGES, ids=lambda image: image.image_scope)
def test_default_image_torch_and_preinstalled_packages_meet_transformers_minimums(
    image: ContainerImage,
) -> None:
    assert image_can_run_transformers(image) == []


def test_the_old_default_images_would_fail_the_check() -> None:
    old = ContainerImage("pytorch", "2.5.1", "py311", "training", torch="2.5.1", python="3.11")
    assert image_can_run_transformers(old) == ["torch 2.5.1 < 2.6"]
    with_old_accelerate = ContainerImage(
        "pytorch",
        "2.6",
        "py312",
        "inference",
        torch="2.6.0",
        python="3.12",
        preinstalled={"accelerate": "0.34.2"},
    )
    assert image_can_run_transformers(with_old_accelerate) == ["accelerate 0.34.2 < 1.1.0"]


def test_the_images_carry_no_accelerate_and_our_code_never_needs_it() -> None:
    # transformers checks accelerate at import only when it is installed (dependency_versions_check),
    # and only its Trainer requires it. Neither image has it; nothing of ours imports or pins it.
    assert all(image.preinstalled == {"accelerate": None} for image in DEFAULT_IMAGES)
    for folder in ("training_job", "endpoint", "hyenadna"):
        for path in (REPO / folder).rglob("*.py"):
            assert not re.search(r"^\s*(import|from)\s+accelerate\b", path.read_text(), re.M), path
            assert "Trainer(" not in path.read_text(), path
    for requirements in (REPO / "training_job" / "requirements.txt", REPO / "endpoint" / "requirements.txt"):
        assert "accelerate" not in _pins(requirements), requirements


def test_hyenadna_builds_and_runs_where_accelerate_is_absent() -> None:
    if importlib.util.find_spec("accelerate") is not None:
        pytest.skip("accelerate is installed here; the check needs a venv without it, as the images are")
    import torch
    from transformers.utils import is_torch_available

    import hyenadna

    assert is_torch_available()  # what transformers 5.23 on torch < 2.6 answers False to
    model = hyenadna.HyenaDNAForCausalLM(hyenadna.config_for_size("tiny", max_seq_len=32))
    out = model(torch.tensor([[7, 8, 9, 10, 11]]), labels=torch.tensor([[7, 8, 9, 10, 11]]))
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize(
    ("instance_type", "tag"),
    [
        ("ml.g5.xlarge", "pytorch:2.13-cu133-amzn2023-sagemaker"),
        ("ml.m5.xlarge", "pytorch:2.13-cpu-amzn2023-sagemaker"),
    ],
)
def test_training_image_is_the_torch_2_13_amzn2023_image_of_the_region(instance_type: str, tag: str) -> None:
    assert (
        training_image_uri("eu-west-1", instance_type)
        == f"763104351884.dkr.ecr.eu-west-1.amazonaws.com/{tag}"
    )
    assert TRAINING_IMAGE.torch.startswith(TRAINING_IMAGE.version + ".")


@pytest.mark.parametrize(
    ("instance_type", "tag"),
    [
        ("ml.m5.xlarge", "pytorch-inference:2.6-cpu-py312"),
        ("ml.g5.xlarge", "pytorch-inference:2.6-gpu-py312"),
    ],
)
def test_inference_image_is_cpu_or_gpu_after_the_endpoint_instance_type(instance_type: str, tag: str) -> None:
    assert (
        inference_image_uri("us-east-1", instance_type)
        == f"763104351884.dkr.ecr.us-east-1.amazonaws.com/{tag}"
    )
    assert INFERENCE_IMAGE.torch.startswith(INFERENCE_IMAGE.version + ".")
    assert INFERENCE_IMAGE.py_version == "py" + INFERENCE_IMAGE.python.replace(".", "")


def test_images_resolve_to_each_partitions_own_registry() -> None:
    # The registry account and DNS suffix differ per partition: never hard-code them.
    assert training_image_uri("cn-north-1", "ml.g5.xlarge").startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/"
    )
    assert inference_image_uri("us-gov-west-1", "ml.m5.xlarge").startswith(
        "442386744353.dkr.ecr.us-gov-west-1.amazonaws.com/"
    )


def test_the_local_stack_uses_the_images_make_deploy_resolves_for_its_region() -> None:
    from hyenaflow.deploy_parameters import template_parameter_defaults
    from hyenaflow.local.pipeline import LOCAL_PARAMETERS, PipelineConfig

    region = PipelineConfig(workdir=Path("unused")).region
    defaults = template_parameter_defaults(REPO / "template.yaml")
    assert LOCAL_PARAMETERS == {
        "TrainingImageUri": training_image_uri(region, defaults["TrainingInstanceType"]),
        "InferenceImageUri": inference_image_uri(region, defaults["EndpointInstanceType"]),
    }


def test_both_images_run_python_3_12_which_make_test_py312_checks() -> None:
    assert {image.python for image in DEFAULT_IMAGES} == {"3.12"}
    assert re.search(r"^PYTHON312 \?= .*python3\.12", (REPO / "Makefile").read_text(), re.M)


# -- what the containers pip-install -----------------------------------------------------------


def _pins(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower()] = version
    return pins


def _pyproject_group(group: str) -> dict[str, str]:
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {name.lower(): version for name, _, version in (item.partition("==") for item in extras[group])}


def test_endpoint_requirements_pin_what_pyproject_pins_and_keep_the_images_numpy_and_torch() -> None:
    pins = _pins(REPO / "endpoint" / "requirements.txt")
    assert pins == {"transformers": "5.23.0", "safetensors": "0.8.0"}
    endpoint_group = _pyproject_group("endpoint")
    assert all(endpoint_group[name] == version for name, version in pins.items())


def test_training_requirements_pin_what_pyproject_pins_and_keep_the_images_torch() -> None:
    pins = _pins(REPO / "training_job" / "requirements.txt")
    assert "torch" not in pins and "numpy" not in pins
    training_group = _pyproject_group("training")
    assert all(training_group[name] == version for name, version in pins.items())
