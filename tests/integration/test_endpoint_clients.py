"""The READMEs' ways of calling the endpoint, run as written against a local endpoint.

README.md shows `hyenaflow invoke`, boto3's `invoke_endpoint` and the sagemaker SDK's
`Endpoint.invoke`; endpoint/README.md the SDK again. Each snippet is executed verbatim (the
endpoint is called `hyenaflow`, as there) with the local stack's AWS_ENDPOINT_URL, which the SDK
honours like any botocore client; all must print the same answer.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyenaflow.cli import main
from hyenaflow.local.pipeline import REPO_ROOT, LocalPipeline, PipelineConfig
from tests.support import polling

pytestmark = pytest.mark.slow

TINY_MODEL = REPO_ROOT / "tests" / "fixtures" / "hyenadna" / "tiny_reference"
ENDPOINT = "hyenaflow"  # the name the snippets use


def python_snippets(readme: Path, must_contain: str) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    return [block for block in blocks if must_contain in block]


def run_snippet(code: str) -> Any:
    """Execute `code` as a script; what it printed, read back as a Python literal."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<README snippet>", "exec"), {"__name__": "__main__"})  # noqa: S102 - our own docs
    return ast.literal_eval(printed.getvalue().strip())


@pytest.fixture(scope="module")
def local_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    workdir = tmp_path_factory.mktemp("clients")
    config = PipelineConfig(workdir=workdir / "local", deliver=False, upload_training_code=False)
    with LocalPipeline(config) as pipeline:
        archive = workdir / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in TINY_MODEL.iterdir():
                tar.add(path, arcname=path.name)
        pipeline.client("s3").upload_file(str(archive), pipeline.data_bucket, "models/clients/model.tar.gz")
        sagemaker = pipeline.client("sagemaker")
        sagemaker.create_model(
            ModelName="hyenaflow-clients",
            ExecutionRoleArn=pipeline.resources["SageMakerExecutionRole"].attributes["Arn"],
            PrimaryContainer={
                "Image": "local",
                "ModelDataUrl": f"s3://{pipeline.data_bucket}/models/clients/model.tar.gz",
            },
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="hyenaflow-clients",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "hyenaflow-clients",
                    "InstanceType": "ml.m5.xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="hyenaflow-clients")
        status = polling.wait_for(
            lambda: sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"],
            "the endpoint",
            120,
            until=lambda s: s in ("InService", "Failed"),
        )
        assert status == "InService"
        yield pipeline


def test_cli_boto3_and_sdk_snippets_get_the_same_answer(
    local_endpoint: LocalPipeline, monkeypatch, capsys
) -> None:
    for name, value in local_endpoint.env().items():
        monkeypatch.setenv(name, value)
    (boto3_snippet,) = python_snippets(REPO_ROOT / "README.md", "invoke_endpoint(")
    (sdk_snippet,) = python_snippets(REPO_ROOT / "README.md", "from sagemaker.core.resources import Endpoint")

    from_boto3 = run_snippet(boto3_snippet)
    from_sdk = run_snippet(sdk_snippet)
    capsys.readouterr()
    assert main(["invoke", "--endpoint-name", ENDPOINT, "--task", "score", "--sequence", "ACGTTGCAAGTC"]) == 0
    from_cli = json.loads(capsys.readouterr().out)

    assert from_boto3["results"][0]["length"] == 12
    assert from_sdk == from_boto3 == from_cli


def test_endpoint_readme_sdk_snippet_embeds(local_endpoint: LocalPipeline, monkeypatch) -> None:
    for name, value in local_endpoint.env().items():
        monkeypatch.setenv(name, value)
    (snippet,) = python_snippets(
        REPO_ROOT / "endpoint" / "README.md", "from sagemaker.core.resources import Endpoint"
    )

    assert run_snippet(snippet) == 8  # the embedded sequence's length
