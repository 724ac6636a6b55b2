"""The local AWS endpoint as a whole: one URL for every service, clean shutdown, events to SQS."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from hyenaflow.local import AwsServer, start_aws_server, wait_for
from tests.support.archives import tar_gz
from tests.support.processes import port_is_free, process_gone

HANGING_TRAIN = textwrap.dedent(
    """
    import os, time
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "..", "..", "train.pid"), "w") as out:
        out.write(str(os.getpid()))
    while True:
        time.sleep(0.05)
    """
)


def start_training_job(aws: AwsServer, name: str, bucket: str, script: str, **request: Any) -> None:
    """A training job running `script` as train.py on one channel, its code and data in `bucket`."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/x", Body=b"x")
    s3.put_object(Bucket=bucket, Key="code.tar.gz", Body=tar_gz({"train.py": script}))
    channel = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/"}}
    aws.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/r",
        HyperParameters={"sagemaker_submit_directory": f'"s3://{bucket}/code.tar.gz"'},
        InputDataConfig=[{"ChannelName": "train", "DataSource": channel}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"},
        ResourceConfig={"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        **request,
    )


def test_one_endpoint_serves_every_service_the_stack_uses(tmp_path: Path) -> None:
    with start_aws_server(tmp_path) as aws:
        aws.client("s3").create_bucket(Bucket="one-endpoint")
        aws.client("dynamodb").create_table(
            TableName="state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        topic = aws.client("sns").create_topic(Name="alerts")["TopicArn"]
        aws.client("ssm").put_parameter(Name="/hyenaflow/x", Value="1", Type="String")
        store = aws.client("omics").create_sequence_store(name="reads")

        assert "one-endpoint" in [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]
        assert aws.client("dynamodb").list_tables()["TableNames"] == ["state"]
        assert [t["TopicArn"] for t in aws.client("sns").list_topics()["Topics"]] == [topic]
        assert aws.client("ssm").get_parameter(Name="/hyenaflow/x")["Parameter"]["Value"] == "1"
        assert [s["id"] for s in aws.client("omics").list_sequence_stores()["sequenceStores"]] == [
            store["id"]
        ]
        assert aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
        assert aws.env()["AWS_ENDPOINT_URL"] == aws.endpoint_url


def test_each_server_starts_empty(tmp_path: Path) -> None:
    with start_aws_server(tmp_path / "first") as aws:
        aws.client("s3").create_bucket(Bucket="left-behind")
        aws.client("omics").create_sequence_store(name="left-behind")

    with start_aws_server(tmp_path / "second") as aws:
        assert aws.client("s3").list_buckets()["Buckets"] == []
        assert aws.client("omics").list_sequence_stores()["sequenceStores"] == []


def test_training_event_reaches_an_sqs_rule_target_with_the_real_shape(tmp_path: Path) -> None:
    with start_aws_server(tmp_path) as aws:
        sqs, events = aws.client("sqs"), aws.client("events")
        url = sqs.create_queue(QueueName="training-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Training Job State Change"],
            "detail": {"TrainingJobStatus": ["Completed", "Failed", "Stopped"]},
        }
        events.put_rule(Name="training-ended", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="training-ended", Targets=[{"Id": "q", "Arn": arn}])

        start_training_job(
            aws,
            "evented",
            "events-bucket",
            "print('done')\n",
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )
        messages = wait_for(
            lambda: sqs.receive_message(QueueUrl=url).get("Messages", []),
            "training event on the queue",
            30,
        )

    event = json.loads(messages[0]["Body"])
    assert (event["source"], event["detail-type"]) == ("aws.sagemaker", "SageMaker Training Job State Change")
    assert event["resources"] == ["arn:aws:sagemaker:us-east-1:123456789012:training-job/evented"]
    detail = event["detail"]
    assert (detail["TrainingJobName"], detail["TrainingJobStatus"]) == ("evented", "Completed")
    assert (
        detail["ModelArtifacts"]["S3ModelArtifacts"] == "s3://events-bucket/out/evented/output/model.tar.gz"
    )
    assert isinstance(detail["CreationTime"], int)  # epoch milliseconds, as SageMaker's events carry


def test_stop_ends_running_training_scripts(tmp_path: Path) -> None:
    aws = start_aws_server(tmp_path)
    start_training_job(aws, "hangs", "stop-bucket", HANGING_TRAIN)
    pid_file = tmp_path / "sagemaker/training/hangs/train.pid"
    pid = wait_for(lambda: pid_file.is_file() and pid_file.read_text(), "training script to start")

    aws.stop()

    assert process_gone(int(pid))


def test_stop_closes_the_listening_socket(tmp_path: Path) -> None:
    aws = start_aws_server(tmp_path)
    port = int(aws.endpoint_url.rsplit(":", 1)[1])
    assert not port_is_free(port)

    aws.stop()

    assert port_is_free(port)
