"""The local stack driven as the README and `hyenaflow local up` show it: the AWS CLI (awscli from
PyPI, pinned in the dev group) with nothing but the printed `export` lines, running the printed
commands: upload a genome, see its read set, its Completed training job, the InService endpoint,
and a score from `aws sagemaker-runtime invoke-endpoint` equal to `hyenaflow invoke`'s.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.local_up import LocalUp
from tests.support.polling import wait_for
from tests.support.training_budget import LEARNING_TRAINING, as_local_up_environment

pytestmark = pytest.mark.slow

FLOW_DEADLINE_S = 480.0
TERMINAL_TRAINING_STATES = ("Completed", "Failed", "Stopped")


def _command(stack: LocalUp, prefix: str) -> list[str]:
    """The one command `local up` printed that starts with `prefix`."""
    (command,) = stack.example_commands(prefix)
    return command


def _answer(completed: subprocess.CompletedProcess[str]) -> Any:
    """The JSON an `aws` command printed; its stderr when it failed."""
    assert completed.returncode == 0, f"{completed.args}: {completed.stderr}"
    return json.loads(completed.stdout)


def _poll(stack: LocalUp, command: list[str], what: str, until: Callable[[Any], bool]) -> Any:
    """Run `command` until its JSON answer satisfies `until` (a failing call counts as not yet:
    describe-endpoint fails until deploy_model has created the endpoint)."""

    def probe() -> Any:
        completed = stack.run(command)
        return json.loads(completed.stdout) if completed.returncode == 0 else completed.stderr

    return wait_for(probe, what, FLOW_DEADLINE_S, until=lambda r: not isinstance(r, str) and until(r))


def test_aws_cli_with_the_printed_exports_follows_a_genome_to_a_scoring_endpoint(tmp_path: Path) -> None:
    with LocalUp.start(tmp_path / "local", as_local_up_environment(LEARNING_TRAINING)) as stack:
        # Given only what `local up` printed, in a fresh shell
        assert stack.exports["AWS_DISABLE_HOST_PREFIX_INJECTION"] == "true"
        assert [line[:3] for line in stack.example_commands("aws ")] == [
            ["aws", "s3", "cp"],
            ["aws", "omics", "list-read-sets"],
            ["aws", "sagemaker", "list-training-jobs"],
            ["aws", "sagemaker", "describe-endpoint"],
            ["aws", "sagemaker-runtime", "invoke-endpoint"],
        ]
        # (the AWS CLI honours AWS_DISABLE_HOST_PREFIX_INJECTION from 1.38.5 on)
        version = stack.run(["aws", "--version"])
        cli_version = (version.stdout or version.stderr).split()[0].removeprefix("aws-cli/")
        assert tuple(int(part) for part in cli_version.split(".")) >= (1, 38, 5), cli_version

        # When the user uploads the genome with the printed `aws s3 cp`
        upload = stack.run(_command(stack, "aws s3 cp"))
        assert upload.returncode == 0 and "upload:" in upload.stdout, upload.stderr

        # Then HealthOmics lists its read set (the one call that needs the host-prefix setting)
        read_sets = _poll(
            stack,
            _command(stack, "aws omics list-read-sets"),
            "the read set",
            until=lambda answer: answer["readSets"],
        )["readSets"]
        assert [(r["sampleId"], r["status"]) for r in read_sets] == [("lambda_phage_NC_001416", "ACTIVE")]

        # and SageMaker lists one training job, Completed
        jobs = _poll(
            stack,
            _command(stack, "aws sagemaker list-training-jobs"),
            "the training job to end",
            until=lambda answer: any(
                j["TrainingJobStatus"] in TERMINAL_TRAINING_STATES for j in answer["TrainingJobSummaries"]
            ),
        )["TrainingJobSummaries"]
        assert [j["TrainingJobStatus"] for j in jobs] == ["Completed"], stack.output

        # and the endpoint deploy_model created is InService
        endpoint = _poll(
            stack,
            _command(stack, "aws sagemaker describe-endpoint"),
            "the endpoint",
            until=lambda answer: answer["EndpointStatus"] in ("InService", "Failed"),
        )
        assert endpoint["EndpointStatus"] == "InService", endpoint.get("FailureReason")

        # and invoke-endpoint with the printed JSON body writes a score to the printed file
        invoke_endpoint = _command(stack, "aws sagemaker-runtime invoke-endpoint")
        request = json.loads(invoke_endpoint[invoke_endpoint.index("--body") + 1])
        invoked = _answer(stack.run(invoke_endpoint, cwd=tmp_path))
        assert invoked["ContentType"].startswith("application/json")
        assert invoked["InvokedProductionVariant"] == endpoint["ProductionVariants"][0]["VariantName"]
        (result,) = json.loads((tmp_path / "answer.json").read_text())["results"]
        assert math.isfinite(result["log_likelihood"]) and result["log_likelihood"] < 0
        assert result["length"] == len(request["sequences"][0])

        # which is the answer `hyenaflow invoke` gives for the same request
        hyenaflow = stack.run(_command(stack, "hyenaflow invoke"))
        assert hyenaflow.returncode == 0, hyenaflow.stderr
        assert json.loads(hyenaflow.stdout)["results"] == [result]
