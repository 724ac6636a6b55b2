"""`make deploy`'s template parameters: the saved ones, the command line's, and the Region's images.

The commands `make deploy` runs besides SAM (deploy-parameters, upload-training-code) run in
.venv-deploy, which has no torch: they are run here in a subprocess where importing torch or
transformers fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hyenaflow.deploy_parameters import (
    deploy_parameters,
    parse_parameter_overrides,
    template_parameter_defaults,
    write_parameter_file,
)
from hyenaflow.images import inference_image_uri, training_image_uri

REPO = Path(__file__).resolve().parents[2]
SAM_PYTHON = REPO / ".venv-sam" / "bin" / "python"
DEFAULTS = template_parameter_defaults(REPO / "template.yaml")
# What `sam deploy --guided` saves (samconfig.toml), quotes and all.
SAVED = (
    'EndpointName="hyenaflow" TrainingInstanceType="ml.p4d.24xlarge" '
    'GenBankQuery="Caudoviricetes[Organism] AND \\"complete genome\\"[Title]" EndpointInstanceType="ml.g5.xlarge"'
)
# Blocks torch/transformers as a venv without them would (ImportError), then runs the CLI.
NO_TORCH = "import sys; sys.modules.update(torch=None, transformers=None); from hyenaflow.cli import main; sys.exit(main(sys.argv[1:]))"


def test_saved_parameters_are_read_as_sam_reads_them() -> None:
    assert parse_parameter_overrides(SAVED) == {
        "EndpointName": "hyenaflow",
        "TrainingInstanceType": "ml.p4d.24xlarge",
        "GenBankQuery": 'Caudoviricetes[Organism] AND "complete genome"[Title]',
        "EndpointInstanceType": "ml.g5.xlarge",
    }
    assert parse_parameter_overrides(["A=1", "B='x y'"]) == {"A": "1", "B": "x y"}
    assert parse_parameter_overrides(None) == {}


@pytest.mark.skipif(not SAM_PYTHON.exists(), reason="no .venv-sam: run `make tools`")
def test_sam_cli_parses_the_saved_string_and_our_parameter_file_alike(tmp_path: Path) -> None:
    parameters = {**parse_parameter_overrides(SAVED), "TrainingImageUri": "123456789012.dkr.ecr.x/y:z"}
    parameter_file = write_parameter_file(parameters, tmp_path / "deploy-parameters.yaml")
    probe = (
        "import json, sys; from samcli.cli.types import CfnParameterOverridesType as T;"
        "print(json.dumps([T().convert(sys.argv[1], None, None), T().convert(sys.argv[2], None, None)]))"
    )
    out = subprocess.run(
        [str(SAM_PYTHON), "-c", probe, SAVED, f"file://{parameter_file}"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    from_saved, from_file = json.loads(out.stdout)
    assert from_saved == parse_parameter_overrides(SAVED)
    assert from_file == parameters


def test_empty_images_are_resolved_for_the_region_and_instance_types() -> None:
    parameters, warnings = deploy_parameters(
        region="eu-west-1", saved=parse_parameter_overrides(SAVED), overrides={}, defaults=DEFAULTS
    )
    assert parameters["TrainingImageUri"] == training_image_uri("eu-west-1", "ml.p4d.24xlarge")
    assert parameters["InferenceImageUri"] == inference_image_uri("eu-west-1", "ml.g5.xlarge")
    assert parameters["InferenceImageUri"].endswith("pytorch-inference:2.6-gpu-py312")  # GPU endpoint
    assert parameters["GenBankQuery"] == 'Caudoviricetes[Organism] AND "complete genome"[Title]'  # kept
    assert warnings == []


def test_template_defaults_pick_the_images_when_nothing_is_saved() -> None:
    parameters, _ = deploy_parameters(region="us-east-1", saved={}, overrides={}, defaults=DEFAULTS)
    assert parameters == {
        "TrainingImageUri": training_image_uri("us-east-1", DEFAULTS["TrainingInstanceType"]),
        "InferenceImageUri": inference_image_uri("us-east-1", DEFAULTS["EndpointInstanceType"]),
    }
    assert parameters["InferenceImageUri"].endswith("-cpu-py312")  # ml.m5.xlarge


def test_an_image_you_give_wins_and_the_command_line_wins_over_samconfig() -> None:
    mine = "111122223333.dkr.ecr.us-east-1.amazonaws.com/my-hyenadna:serve-gpu-1"
    saved = {
        "InferenceImageUri": "111122223333.dkr.ecr.us-east-1.amazonaws.com/old:cpu-1",
        "EndpointName": "a",
    }
    parameters, _ = deploy_parameters(
        region="us-east-1",
        saved=saved,
        overrides={"InferenceImageUri": mine, "EndpointInstanceType": "ml.g5.xlarge"},
        defaults=DEFAULTS,
    )
    assert parameters["InferenceImageUri"] == mine
    assert parameters["EndpointName"] == "a"
    assert parameters["TrainingImageUri"] == training_image_uri("us-east-1", DEFAULTS["TrainingInstanceType"])


def test_a_saved_image_of_another_region_or_processor_is_flagged() -> None:
    # --guided saves the URIs it showed; after a Region or instance family change they no longer fit.
    saved = {
        "TrainingImageUri": training_image_uri("us-east-1", "ml.g5.xlarge"),
        "InferenceImageUri": inference_image_uri("eu-west-1", "ml.m5.xlarge"),
        "EndpointInstanceType": "ml.g5.xlarge",
    }
    _, warnings = deploy_parameters(region="eu-west-1", saved=saved, overrides={}, defaults=DEFAULTS)
    assert len(warnings) == 2
    assert warnings[0].startswith("TrainingImageUri=") and "is in us-east-1" in warnings[0]
    assert warnings[1].startswith("InferenceImageUri=")
    assert "a CPU image but the instances are ml.g5.xlarge" in warnings[1]
    _, none = deploy_parameters(
        region="us-east-1",
        saved={"TrainingImageUri": saved["TrainingImageUri"]},
        overrides={},
        defaults=DEFAULTS,
    )
    assert none == []


def _run_without_torch(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def test_deploy_parameters_runs_without_torch_and_writes_what_sam_deploy_reads(tmp_path: Path) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        "version = 0.1\n[default.deploy.parameters]\n"
        f'region = "ap-southeast-1"\nparameter_overrides = {json.dumps(SAVED)}\n'
    )
    out = _run_without_torch(
        [
            "deploy-parameters",
            "--samconfig",
            str(samconfig),
            "--template",
            str(REPO / "template.yaml"),
            "--out",
            str(tmp_path / "p.yaml"),
            "--parameter-overrides",
            'EndpointName="blue"',
        ],
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    written = json.loads((tmp_path / "p.yaml").read_text())
    assert written["EndpointName"] == "blue"
    assert written["TrainingImageUri"] == training_image_uri("ap-southeast-1", "ml.p4d.24xlarge")
    assert f"TrainingImageUri={written['TrainingImageUri']}" in out.stdout


def test_upload_training_code_runs_without_torch(tmp_path: Path) -> None:
    from tests.support.lambda_env import moto_stack

    with moto_stack(bucket="deploy-data") as stack:
        out = _run_without_torch(
            ["upload-training-code", "--bucket", "deploy-data", "--region", "us-east-1"], cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        assert stack.keys("code/") == ["code/training/sourcedir.tar.gz"]


def test_the_blocking_really_blocks() -> None:
    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH.replace("from hyenaflow.cli", "import torch; from hyenaflow.cli")],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "import of torch halted" in out.stderr


def test_make_deploy_uses_the_light_deploy_venv_and_never_builds_the_torch_one() -> None:
    # `make -n` prints the recipe without running it (prerequisites that are up to date print nothing).
    out = subprocess.run(["make", "-n", "deploy"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    commands = out.stdout.splitlines()
    assert ".venv-deploy/bin/hyenaflow deploy-parameters --out .aws-sam/deploy-parameters.yaml" in out.stdout
    assert any(
        c.startswith(".venv-sam/bin/sam deploy --guided --parameter-overrides file://") for c in commands
    )
    assert commands[-1] == ".venv-deploy/bin/hyenaflow upload-training-code"
    assert not [c for c in commands if ".venv/bin/" in c or "[lambda,training,endpoint" in c or "torch" in c]
    makefile = (REPO / "Makefile").read_text()
    assert "-e '.[deploy]'" in makefile  # .venv-deploy: boto3 + sagemaker-core + the CLI, no torch
