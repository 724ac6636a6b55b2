"""Local SageMaker endpoints: inference-server subprocesses behind CreateEndpoint/UpdateEndpoint/Invoke."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hyenaflow.local import AwsServer, start_aws_server, wait_for
from tests.support.archives import tar_gz
from tests.support.processes import process_gone

ROLE = "arn:aws:iam::123456789012:role/sagemaker"

# A stand-in for endpoint/serve.py with the container contract: GET /ping, POST /invocations.
FAKE_SERVE = textwrap.dedent(
    """
    import argparse, json, os, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    version = open(os.path.join(args.model_dir, "version.txt")).read().strip()
    if version == "broken":
        sys.exit("cannot load model: version.txt says broken")
    if not os.path.isfile(os.path.join(os.environ["SAGEMAKER_SUBMIT_DIRECTORY"], "serve.py")):
        sys.exit("SAGEMAKER_SUBMIT_DIRECTORY does not hold the model's code/")
    with open(os.path.join(args.model_dir, "server.pid"), "w") as out:
        out.write(str(os.getpid()))

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, payload):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.reply(200 if self.path == "/ping" else 404, {})

        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not request.get("sequences"):
                self.reply(400, {"error": "'sequences' must be a non-empty list of DNA strings"})
            else:
                self.reply(200, {"model": version, "lengths": [len(s) for s in request["sequences"]]})

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
    """
)


def model_tar(version: str) -> bytes:
    return tar_gz({"version.txt": version, "code/serve.py": FAKE_SERVE})


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsServer]:
    with start_aws_server(tmp_path_factory.mktemp("local-aws")) as local:
        local.client("s3").create_bucket(Bucket="model-bucket")
        yield local


def register_model(
    aws: AwsServer, version: str, instance_type: str = "ml.g5.xlarge", model_data_url: str | None = None
) -> str:
    """Upload a model.tar.gz (unless `model_data_url` names other model data), CreateModel +
    CreateEndpointConfig as deploy_model does; return the config."""
    sagemaker, suffix = aws.client("sagemaker"), uuid.uuid4().hex[:8]
    if model_data_url is None:
        model_data_url = f"s3://model-bucket/{suffix}/model.tar.gz"
        aws.client("s3").put_object(
            Bucket="model-bucket", Key=f"{suffix}/model.tar.gz", Body=model_tar(version)
        )
    sagemaker.create_model(
        ModelName=f"model-{suffix}",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "pytorch-inference",
            "ModelDataUrl": model_data_url,
            # As deploy_model sets them for the PyTorch inference container.
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            },
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"config-{suffix}",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"model-{suffix}",
                "InstanceType": instance_type,
                "InitialInstanceCount": 1,
            }
        ],
    )
    return f"config-{suffix}"


def wait_settled(aws: AwsServer, name: str) -> dict[str, Any]:
    sagemaker = aws.client("sagemaker")
    return wait_for(
        lambda: sagemaker.describe_endpoint(EndpointName=name),
        f"endpoint {name} to settle",
        60,
        until=lambda r: r["EndpointStatus"] not in ("Creating", "Updating"),
    )


def endpoint_states(aws: AwsServer, name: str) -> list[str]:
    """EndpointStatus of each "SageMaker Endpoint State Change" event of the endpoint, in order."""
    return [
        e["detail"]["EndpointStatus"]
        for e in aws.events.history
        if e["detail-type"] == "SageMaker Endpoint State Change" and e["detail"]["EndpointName"] == name
    ]


def invoke(aws: AwsServer, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = aws.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=name, ContentType="application/json", Accept="application/json", Body=json.dumps(payload)
    )
    return json.loads(response["Body"].read())


def server_pid(aws: AwsServer, name: str) -> int:
    pids = sorted((aws.workdir / "sagemaker/endpoints" / name).glob("deployment-*/model/server.pid"))
    return int(pids[-1].read_text())


def test_endpoint_serves_its_model_and_update_swaps_blue_green(aws: AwsServer) -> None:
    sagemaker, name = aws.client("sagemaker"), f"hyenadna-{uuid.uuid4().hex[:6]}"
    first, second = register_model(aws, "v1"), register_model(aws, "v2", "ml.g6.xlarge")

    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=first)
    assert sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating"
    assert wait_settled(aws, name)["EndpointStatus"] == "InService"
    assert invoke(aws, name, {"sequences": ["ACGT", "AC"]}) == {"model": "v1", "lengths": [4, 2]}
    old_pid = server_pid(aws, name)

    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=second)
    updating = sagemaker.describe_endpoint(EndpointName=name)
    assert (updating["EndpointStatus"], updating["EndpointConfigName"]) == ("Updating", first)
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == second
    assert invoke(aws, name, {"sequences": ["A"]})["model"] == "v1"  # old model serves during the update
    updated = wait_settled(aws, name)

    assert (updated["EndpointStatus"], updated["EndpointConfigName"]) == ("InService", second)
    assert "PendingDeploymentSummary" not in updated
    assert invoke(aws, name, {"sequences": ["ACG"]}) == {"model": "v2", "lengths": [3]}
    wait_for(lambda: process_gone(old_pid), "old inference server to stop", 15)
    assert endpoint_states(aws, name) == ["InService", "Updating", "InService"]


def test_failed_update_rolls_back_and_old_model_keeps_serving(aws: AwsServer) -> None:
    sagemaker, name = aws.client("sagemaker"), f"rollback-{uuid.uuid4().hex[:6]}"
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=register_model(aws, "v1"))
    wait_settled(aws, name)
    broken = register_model(aws, "broken")

    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=broken)
    endpoint = wait_settled(aws, name)

    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] != broken
    assert "cannot load model: version.txt says broken" in endpoint["FailureReason"]
    assert invoke(aws, name, {"sequences": ["AC"]})["model"] == "v1"


def blue_green(bake_s: int, alarms: list[str]) -> dict[str, Any]:
    """An UpdateEndpoint DeploymentConfig as deploy_model sends it (ALL_AT_ONCE with a bake)."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": bake_s},
            "TerminationWaitInSeconds": 0,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarms]},
    }


def put_alarm(aws: AwsServer, name: str) -> None:
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def test_alarm_in_alarm_during_the_bake_rolls_the_update_back_to_the_old_config(aws: AwsServer) -> None:
    sagemaker, name = aws.client("sagemaker"), f"alarmed-{uuid.uuid4().hex[:6]}"
    alarm = f"{name}-5xx"
    put_alarm(aws, alarm)
    first = register_model(aws, "v1")
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=first)
    wait_settled(aws, name)

    sagemaker.update_endpoint(
        EndpointName=name,
        EndpointConfigName=register_model(aws, "v2"),
        DeploymentConfig=blue_green(600, [alarm]),
    )
    # the new model takes all the traffic while the endpoint bakes ...
    wait_for(
        lambda: invoke(aws, name, {"sequences": ["A"]})["model"],
        "v2 to take the traffic",
        60,
        until="v2".__eq__,
    )
    assert sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating"
    # ... until its alarm fires (moto evaluates no metric: the test sets the alarm's state)
    aws.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx")
    endpoint = wait_settled(aws, name)

    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", first)
    assert alarm in endpoint["FailureReason"]
    assert invoke(aws, name, {"sequences": ["A"]})["model"] == "v1"
    assert endpoint_states(aws, name) == ["InService", "Updating", "InService"]


def test_update_whose_alarms_stay_ok_through_the_bake_completes(aws: AwsServer) -> None:
    sagemaker, name = aws.client("sagemaker"), f"baked-{uuid.uuid4().hex[:6]}"
    alarm = f"{name}-5xx"
    put_alarm(aws, alarm)
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=register_model(aws, "v1"))
    wait_settled(aws, name)
    second = register_model(aws, "v2")

    sagemaker.update_endpoint(
        EndpointName=name, EndpointConfigName=second, DeploymentConfig=blue_green(1, [alarm])
    )
    endpoint = wait_settled(aws, name)

    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", second)
    assert "FailureReason" not in endpoint
    assert invoke(aws, name, {"sequences": ["A"]})["model"] == "v2"


def test_model_that_fails_to_start_leaves_endpoint_failed(aws: AwsServer) -> None:
    sagemaker, name = aws.client("sagemaker"), f"failing-{uuid.uuid4().hex[:6]}"

    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=register_model(aws, "broken"))
    endpoint = wait_settled(aws, name)

    assert endpoint["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check" in endpoint["FailureReason"]


UNFETCHABLE_MODEL_DATA = {
    "outside S3": "https://models.example.com/model.tar.gz",
    "missing object": "s3://model-bucket/nothing-here/model.tar.gz",
    "not a tar.gz": "s3://model-bucket/not-a-model.txt",
}


@pytest.mark.parametrize("model_data_url", UNFETCHABLE_MODEL_DATA.values(), ids=UNFETCHABLE_MODEL_DATA.keys())
def test_model_data_that_cannot_be_fetched_leaves_endpoint_failed_with_the_reason(
    aws: AwsServer, model_data_url: str
) -> None:
    aws.client("s3").put_object(Bucket="model-bucket", Key="not-a-model.txt", Body=b"weights? no")
    sagemaker, name = aws.client("sagemaker"), f"no-model-{uuid.uuid4().hex[:6]}"

    sagemaker.create_endpoint(
        EndpointName=name, EndpointConfigName=register_model(aws, "v1", model_data_url=model_data_url)
    )
    endpoint = wait_settled(aws, name)

    assert endpoint["EndpointStatus"] == "Failed"
    assert model_data_url in endpoint["FailureReason"]
    assert endpoint_states(aws, name) == ["Failed"]


def test_update_to_model_data_that_cannot_be_fetched_keeps_the_old_config_serving(aws: AwsServer) -> None:
    sagemaker, name = aws.client("sagemaker"), f"bad-update-{uuid.uuid4().hex[:6]}"
    first = register_model(aws, "v1")
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=first)
    wait_settled(aws, name)
    missing = "s3://model-bucket/never-uploaded/model.tar.gz"

    sagemaker.update_endpoint(
        EndpointName=name, EndpointConfigName=register_model(aws, "v2", model_data_url=missing)
    )
    endpoint = wait_settled(aws, name)

    # As SageMaker reports a failed update: InService on the old config, FailureReason set.
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", first)
    assert missing in endpoint["FailureReason"]
    assert "PendingDeploymentSummary" not in endpoint
    assert invoke(aws, name, {"sequences": ["AC"]})["model"] == "v1"
    assert endpoint_states(aws, name) == ["InService", "Updating", "InService"]


def test_model_client_error_is_returned_as_model_error(aws: AwsServer) -> None:
    sagemaker, name = aws.client("sagemaker"), f"errors-{uuid.uuid4().hex[:6]}"
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=register_model(aws, "v1"))
    wait_settled(aws, name)

    with pytest.raises(ClientError) as error:
        invoke(aws, name, {"sequences": []})

    response = error.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert "'sequences' must be a non-empty list of DNA strings" in response["OriginalMessage"]


def test_deleted_endpoint_stops_its_server_and_refuses_invocations(aws: AwsServer) -> None:
    sagemaker, name = aws.client("sagemaker"), f"delete-{uuid.uuid4().hex[:6]}"
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=register_model(aws, "v1"))
    wait_settled(aws, name)
    pid = server_pid(aws, name)

    sagemaker.delete_endpoint(EndpointName=name)

    wait_for(lambda: process_gone(pid), "inference server to stop", 15)
    with pytest.raises(ClientError) as error:
        invoke(aws, name, {"sequences": ["A"]})
    assert error.value.response["Error"]["Code"] == "ValidationError"


@pytest.mark.parametrize("instance_type", ["ml.g5.xlarge", "ml.g6.xlarge", "ml.p4d.24xlarge"])
def test_gpu_endpoint_instance_types_are_accepted(aws: AwsServer, instance_type: str) -> None:
    config = register_model(aws, "v1", instance_type)

    variants = aws.client("sagemaker").describe_endpoint_config(EndpointConfigName=config)[
        "ProductionVariants"
    ]

    assert variants[0]["InstanceType"] == instance_type


def test_existing_model_and_endpoint_config_names_are_refused(aws: AwsServer) -> None:
    sagemaker = aws.client("sagemaker")
    config = register_model(aws, "v1")
    model = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0][
        "ModelName"
    ]

    with pytest.raises(ClientError) as model_error:
        sagemaker.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "other"})
    with pytest.raises(ClientError) as config_error:
        sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[{"VariantName": "v", "ModelName": model, "InstanceType": "ml.g5.xlarge"}],
        )

    assert model_error.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot create already existing model" in model_error.value.response["Error"]["Message"]
    assert config_error.value.response["Error"]["Code"] == "ValidationException"
    assert "already existing endpoint configuration" in config_error.value.response["Error"]["Message"]
    assert sagemaker.describe_model(ModelName=model)["PrimaryContainer"]["Image"] == "pytorch-inference"
