"""The local SageMaker model registry (hyenaflow/local/sagemaker/model_packages.py) behaves as
botocore's sagemaker model says, where moto 5.2.5 does not (see the module's docstring)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hyenaflow.local import AwsServer, start_aws_server
from tests.integration.test_local_sagemaker_endpoints import ROLE, invoke, model_tar, wait_settled


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsServer]:
    with start_aws_server(tmp_path_factory.mktemp("local-aws")) as local:
        local.client("s3").create_bucket(Bucket="model-bucket")
        yield local


@pytest.fixture
def group(aws: AwsServer) -> str:
    """A fresh model package group; returns its ARN."""
    return aws.client("sagemaker").create_model_package_group(
        ModelPackageGroupName=f"models-{uuid.uuid4().hex[:8]}"
    )["ModelPackageGroupArn"]


def _register(aws: AwsServer, group: str, status: str = "Approved", version: str = "v1", **extra: Any) -> str:
    key = f"{uuid.uuid4().hex[:8]}/model.tar.gz"
    aws.client("s3").put_object(Bucket="model-bucket", Key=key, Body=model_tar(version))
    return aws.client("sagemaker").create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": "pytorch-inference",
                    "ModelDataUrl": f"s3://model-bucket/{key}",
                    "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
                }
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus=status,
        **extra,
    )["ModelPackageArn"]


def test_packages_of_a_group_are_versions_found_by_arn_or_group_and_version(
    aws: AwsServer, group: str
) -> None:
    sagemaker, name = aws.client("sagemaker"), group.rsplit("/", 1)[1]

    arns = [_register(aws, group) for _ in range(3)]  # the group given by its ARN (ArnOrName)
    by_version = sagemaker.describe_model_package(ModelPackageName=f"{name}/2")
    by_arn = sagemaker.describe_model_package(ModelPackageName=arns[2])

    assert [sagemaker.describe_model_package(ModelPackageName=a)["ModelPackageVersion"] for a in arns] == [
        1,
        2,
        3,
    ]
    assert (by_version["ModelPackageArn"], by_version["ModelPackageVersion"]) == (arns[1], 2)
    assert by_arn["ModelPackageName"] and by_arn["ModelPackageGroupName"] == name  # required by the shape
    with pytest.raises(ClientError, match="not found"):
        sagemaker.describe_model_package(ModelPackageName=name)  # a group is no package
    listed = sagemaker.list_model_packages(
        ModelPackageGroupName=name, SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    assert [p["ModelPackageVersion"] for p in listed] == [3, 2, 1]


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(51)},  # 1-50 entries
        {"Reason": "x" * 257},  # values <= 256 characters
        {"K" * 129: "v"},  # keys <= 128
        {"Reason": "worse, not better"},  # no commas in the pattern
    ],
    ids=["51 entries", "257-char value", "129-char key", "comma"],
)
def test_customer_metadata_outside_botocores_constraints_is_refused(
    aws: AwsServer, group: str, metadata: dict[str, str]
) -> None:
    with pytest.raises(ClientError) as refused:
        _register(aws, group, CustomerMetadataProperties=metadata)
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_a_retried_create_with_its_client_token_returns_the_same_package(aws: AwsServer, group: str) -> None:
    token = str(uuid.uuid4())

    first = _register(aws, group, ClientToken=token)
    again = _register(aws, group, ClientToken=token)

    assert first == again
    packages = aws.client("sagemaker").list_model_packages(ModelPackageGroupName=group)
    assert len(packages["ModelPackageSummaryList"]) == 1


def test_update_changes_only_what_it_is_given(aws: AwsServer, group: str) -> None:
    sagemaker = aws.client("sagemaker")
    arn = _register(
        aws,
        group,
        status="PendingManualApproval",
        CustomerMetadataProperties={"TrainingJob": "job-1", "A": "1"},
    )

    sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="worse"
    )
    after_approval = sagemaker.describe_model_package(ModelPackageName=arn)
    sagemaker.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"A": "2", "B": "3"},
        CustomerMetadataPropertiesToRemove=["C"],
    )
    after_metadata = sagemaker.describe_model_package(ModelPackageName=arn)

    assert after_approval["CustomerMetadataProperties"] == {"TrainingJob": "job-1", "A": "1"}
    assert (after_metadata["ModelApprovalStatus"], after_metadata["ApprovalDescription"]) == (
        "Rejected",
        "worse",
    )
    assert after_metadata["CustomerMetadataProperties"] == {"TrainingJob": "job-1", "A": "2", "B": "3"}
    bare = _register(aws, group)
    sagemaker.update_model_package(ModelPackageArn=bare, CustomerMetadataPropertiesToRemove=["X"])  # no crash
    assert sagemaker.describe_model_package(ModelPackageName=bare)["ModelApprovalStatus"] == "Approved"


def test_create_model_refuses_a_missing_or_unapproved_package(aws: AwsServer, group: str) -> None:
    sagemaker = aws.client("sagemaker")
    missing = group.replace("model-package-group", "model-package") + "/99"
    rejected = _register(aws, group, status="Rejected")

    for package in (missing, rejected):
        with pytest.raises(ClientError) as refused:
            sagemaker.create_model(
                ModelName=f"m-{uuid.uuid4().hex[:8]}",
                ExecutionRoleArn=ROLE,
                PrimaryContainer={"ModelPackageName": package},
            )
        assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Approved" in str(refused.value)


def test_endpoint_of_a_model_made_from_an_approved_package_serves_the_package_model(
    aws: AwsServer, group: str
) -> None:
    sagemaker, suffix = aws.client("sagemaker"), uuid.uuid4().hex[:8]
    package = _register(aws, group, version="from-the-package")
    sagemaker.create_model(
        ModelName=f"m-{suffix}", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": package}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"c-{suffix}",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"m-{suffix}",
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )

    sagemaker.create_endpoint(EndpointName=f"e-{suffix}", EndpointConfigName=f"c-{suffix}")

    assert wait_settled(aws, f"e-{suffix}")["EndpointStatus"] == "InService"
    assert invoke(aws, f"e-{suffix}", {"sequences": ["ACGT"]})["model"] == "from-the-package"
    described = sagemaker.describe_model(ModelName=f"m-{suffix}")
    assert described["PrimaryContainer"]["ModelPackageName"] == package


def test_hyenaflow_models_lists_each_jobs_figures_decision_and_what_serves(
    aws: AwsServer, group: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hyenaflow.cli import main
    from pipeline.read_set_tags import ORGANISM_TAG, TAXONOMY_ID_TAG
    from pipeline.training.model_registry import DataLineage, ReadSetOrigins, register
    from pipeline.training.quality_gate import GateFigures, quality_gate

    sagemaker, suffix = aws.client("sagemaker"), uuid.uuid4().hex[:8]
    aws.client("s3").put_object(Bucket="model-bucket", Key=f"{suffix}/model.tar.gz", Body=model_tar("v2"))
    served = f"s3://model-bucket/{suffix}/model.tar.gz"
    # Two jobs as deploy_model registers them: a first model, then a warm start that beat it.
    for job, figures, serving, started_from, model_data in (
        ("job-1", GateFigures(candidate=3.78), None, None, "s3://model-bucket/job-1/model.tar.gz"),
        (
            "job-2",
            GateFigures(candidate=3.65, baseline=3.7, seen_candidate=3.6, seen_baseline=3.62),
            "s3://m1",
            "s3://m1",
            served,
        ),
    ):
        decision = quality_gate(
            figures,
            serving_model_data_url=serving,
            warm_start_model_data_url=started_from,
            margin=0.0,
            forgetting_tolerance=0.02,
        )
        registered = register(
            sagemaker,
            group=group,
            training_job={"TrainingJobName": job, "ModelArtifacts": {"S3ModelArtifacts": model_data}},
            decision=decision,
            lineage=DataLineage(
                training_data="s3://store/",
                read_set_ids=["1111111111", "2222222222"],
                warm_start_from=started_from,
                # what the read sets' tags said (deploy_model looks them up: read_set_origins.py)
                origins=ReadSetOrigins(
                    (
                        {ORGANISM_TAG: "Escherichia phage Lambda", TAXONOMY_ID_TAG: "10710"},
                        {
                            ORGANISM_TAG: "Yersinia pestis biovar Microtus str. 91001",
                            TAXONOMY_ID_TAG: "229193",
                        },
                    )
                ),
            ),
            inference_image_uri="pytorch-inference",
            endpoint_instance_type="ml.m5.xlarge",
        )
    sagemaker.create_model(
        ModelName=f"m-{suffix}", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": registered.arn}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"c-{suffix}",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"m-{suffix}",
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=f"e-{suffix}", EndpointConfigName=f"c-{suffix}")
    assert wait_settled(aws, f"e-{suffix}")["EndpointStatus"] == "InService"
    for name, value in aws.env().items():
        monkeypatch.setenv(name, value)

    code = main(
        ["models", "--model-package-group", group.rsplit("/", 1)[1], "--endpoint-name", f"e-{suffix}"]
    )

    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(f"endpoint e-{suffix} serves version 2")
    first, second = (line for line in out if line.lstrip().startswith(("1  ", "2  ")))
    assert "job-1" in first and "3.7800" in first and "Approved" in first and "serving" not in first
    assert "job-2" in second and "3.7000    3.6500" in second and "3.6200 -> 3.6000" in second
    assert second.endswith("Approved  <- serving")
    assert "Escherichia phage Lam..." in first  # the column holds 24 characters ...
    assert (  # ... the line beneath lists them all
        "     organisms: Escherichia phage Lambda / Yersinia pestis biovar Microtus str. 91001"
        " (taxonomy ids: 10710 / 229193)"
    ) in out
    assert any(
        "beats-baseline: eval perplexity 3.6500 is at most its baseline 3.7000" in line for line in out
    )
