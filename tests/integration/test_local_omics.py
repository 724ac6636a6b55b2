"""HealthOmics sequence-store emulation, over HTTP with boto3, as the Lambdas and training use it."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hyenaflow.local import AwsServer, start_aws_server, wait_for
from hyenaflow.local.omics import archive_read_sets
from hyenaflow.local.omics.fastq_validation import MAX_READ_LENGTH

ROLE = "arn:aws:iam::123456789012:role/omics-import"
TERMINAL = {"COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"}


def fastq(reads: list[tuple[str, str]]) -> bytes:
    return "".join(f"@{name}\n{seq}\n+\n{'I' * len(seq)}\n" for name, seq in reads).encode()


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsServer]:
    with start_aws_server(tmp_path_factory.mktemp("local-aws")) as local:
        yield local


@pytest.fixture
def store(aws: AwsServer) -> dict[str, Any]:
    omics = aws.client("omics")
    created = omics.create_sequence_store(name=f"store-{uuid.uuid4().hex[:6]}")
    return omics.get_sequence_store(id=created["id"])


@pytest.fixture
def bucket(aws: AwsServer) -> str:
    name = f"data-{uuid.uuid4().hex[:8]}"
    aws.client("s3").create_bucket(Bucket=name)
    return name


def put(aws: AwsServer, bucket: str, key: str, body: bytes) -> str:
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def source(uri: str, sample: str = "sample-1") -> dict[str, Any]:
    return {
        "sourceFiles": {"source1": uri},
        "sourceFileType": "FASTQ",
        "subjectId": "phage",
        "sampleId": sample,
    }


def run_import(aws: AwsServer, store_id: str, sources: list[dict[str, Any]]) -> dict[str, Any]:
    omics = aws.client("omics")
    job = omics.start_read_set_import_job(sequenceStoreId=store_id, roleArn=ROLE, sources=sources)
    assert job["status"] == "SUBMITTED"
    return wait_for(
        lambda: omics.get_read_set_import_job(sequenceStoreId=store_id, id=job["id"]),
        f"import job {job['id']} to finish",
        30,
        until=lambda r: r["status"] in TERMINAL,
    )


def event_queue(aws: AwsServer, pattern: dict[str, Any]) -> str:
    """An SQS queue behind an EventBridge rule with `pattern`, as template.yaml wires them."""
    sqs, events = aws.client("sqs"), aws.client("events")
    name = f"q-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def drain(aws: AwsServer, url: str) -> list[dict[str, Any]]:
    messages = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_fastq_import_completes_with_read_set_under_the_access_point_and_event(
    aws: AwsServer, store: dict[str, Any], bucket: str
) -> None:
    body = gzip.compress(fastq([("NC_001422.1:0-8", "GAGTTTTA"), ("NC_001422.1:8-12", "TCGC")]))
    uri = put(aws, bucket, "staged/phix/part-000.fastq.gz", body)
    queue = event_queue(
        aws,
        {
            "source": ["aws.omics"],
            "detail-type": ["Read Set Import Job Status Change"],
            "detail": {"status": ["COMPLETED"]},
        },
    )

    job = run_import(aws, store["id"], [source(uri, sample="phix")])

    assert job["status"] == "COMPLETED"
    read_set_id = job["sources"][0]["readSetId"]
    omics = aws.client("omics")
    listed = omics.list_read_sets(sequenceStoreId=store["id"])["readSets"]
    assert [(r["id"], r["sampleId"], r["status"]) for r in listed] == [(read_set_id, "phix", "ACTIVE")]
    assert listed[0]["sequenceInformation"] == {"totalReadCount": 2, "totalBaseCount": 12}
    metadata = omics.get_read_set_metadata(sequenceStoreId=store["id"], id=read_set_id)
    object_uri = metadata["files"]["source1"]["s3Access"]["s3Uri"]
    assert object_uri == f"{store['s3Access']['s3Uri']}readSet/{read_set_id}/part-000.fastq.gz"
    access_point_bucket, key = object_uri.removeprefix("s3://").split("/", 1)
    assert aws.client("s3").get_object(Bucket=access_point_bucket, Key=key)["Body"].read() == body
    events = drain(aws, queue)
    assert [(e["source"], e["detail"]["id"], e["detail"]["sequenceStoreId"]) for e in events] == [
        ("aws.omics", job["id"], store["id"])
    ]
    assert events[0]["resources"] == [f"{store['arn']}/importJob/{job['id']}"]


def test_invalid_record_fails_only_its_source_naming_the_line(
    aws: AwsServer, store: dict[str, Any], bucket: str
) -> None:
    good = put(aws, bucket, "good.fastq.gz", gzip.compress(fastq([("r:0-4", "ACGT")])))
    truncated_quality = b"@r:0-4\nACGT\n+\nIII\n"
    bad = put(aws, bucket, "bad.fastq.gz", gzip.compress(fastq([("r:0-2", "AC")]) + truncated_quality))

    job = run_import(aws, store["id"], [source(good, "good"), source(bad, "bad")])

    assert job["status"] == "COMPLETED_WITH_FAILURES"
    by_sample = {s["sampleId"]: s for s in job["sources"]}
    assert by_sample["good"]["status"] == "FINISHED" and by_sample["good"]["readSetId"]
    assert by_sample["bad"]["status"] == "FAILED" and "readSetId" not in by_sample["bad"]
    assert "bad.fastq.gz: line 8: quality has 3 characters for 4 bases" in by_sample["bad"]["statusMessage"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (fastq([("r:0-4", "ACGT")]), "not gzip compressed"),
        (gzip.compress(b"ACGT\nACGT\n"), "not a multiple of 4"),
        (gzip.compress(b"r1\nACGT\n+\nIIII\n"), "line 1: a FASTQ header must start with '@'"),
        (gzip.compress(fastq([("r:0-4", "AC>T")])), "line 2: sequence is empty or holds non-IUPAC"),
        (gzip.compress(fastq([("long", "A" * (MAX_READ_LENGTH + 1))])), "exceeds the"),
        (gzip.compress(b"@r:0-4\nACGT\n+\nII I\n"), "line 4: quality characters must be Phred+33"),
        (gzip.compress(fastq([("r:0-4", "ACGT")] * 50))[:-12], "corrupt gzip stream"),
        (gzip.compress(b""), "no FASTQ records"),
    ],
    ids=[
        "plain-text",
        "not-4-lines",
        "no-at-header",
        "non-iupac",
        "read-too-long",
        "phred",
        "truncated-gz",
        "empty",
    ],
)
def test_source_healthomics_would_refuse_fails_the_job(
    aws: AwsServer, store: dict[str, Any], bucket: str, body: bytes, expected: str
) -> None:
    uri = put(aws, bucket, "x.fastq.gz", body)

    job = run_import(aws, store["id"], [source(uri)])

    assert job["status"] == "FAILED"
    assert job["sources"][0]["status"] == "FAILED"
    assert expected in job["sources"][0]["statusMessage"]
    assert aws.client("omics").list_read_sets(sequenceStoreId=store["id"])["readSets"] == []


def test_source_outside_the_store_region_or_missing_fails(
    aws: AwsServer, store: dict[str, Any], bucket: str
) -> None:
    s3 = aws.client("s3")
    other = f"west-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=other, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    elsewhere = put(aws, other, "x.fastq.gz", gzip.compress(fastq([("r:0-4", "ACGT")])))

    job = run_import(
        aws, store["id"], [source(elsewhere, "west"), source(f"s3://{bucket}/absent.fastq.gz", "gone")]
    )

    assert job["status"] == "FAILED"
    messages = {s["sampleId"]: s["statusMessage"] for s in job["sources"]}
    assert "sources must be in the sequence store's Region (us-east-1)" in messages["west"]
    assert "object does not exist" in messages["gone"]


def test_sources_the_model_refuses_are_a_validation_error_naming_the_field_and_limit(
    aws: AwsServer, store: dict[str, Any], bucket: str
) -> None:
    # botocore's omics model: S3Uri key part `.{1,1024}`, sampleId/name 1-127 characters.
    too_long_key = f"s3://{bucket}/" + "k" * 1025
    fits = put(aws, bucket, "k" * 1012 + ".fastq.gz", gzip.compress(fastq([("r:0-4", "ACGT")])))
    omics = aws.client("omics")

    for bad, field, limit in [
        (source(too_long_key), "sourceFiles.source1", "(.{1,1024})"),
        (source(fits, sample="s" * 128), "sampleId", "between 1 and 127"),
        ({**source(fits), "name": "tab\there"}, "name", "\\p{L}"),
    ]:
        with pytest.raises(ClientError) as error:
            omics.start_read_set_import_job(sequenceStoreId=store["id"], roleArn=ROLE, sources=[bad])
        message = error.value.response["Error"]["Message"]
        assert error.value.response["Error"]["Code"] == "ValidationException"
        assert f"at 'sources.1.member.{field}' failed to satisfy constraint" in message and limit in message

    assert run_import(aws, store["id"], [source(fits)])["status"] == "COMPLETED"  # 1,021 characters: fine


def test_read_sets_and_jobs_page_and_filter_as_boto3_paginators_expect(
    aws: AwsServer, store: dict[str, Any], bucket: str
) -> None:
    uris = [
        put(aws, bucket, f"p{i}.fastq.gz", gzip.compress(fastq([(f"r{i}:0-4", "ACGT")]))) for i in range(3)
    ]
    done = run_import(aws, store["id"], [source(uri, f"s{i}") for i, uri in enumerate(uris)])
    failed = run_import(aws, store["id"], [source(f"s3://{bucket}/absent.fastq.gz")])
    omics = aws.client("omics")

    pages = omics.get_paginator("list_read_sets").paginate(
        sequenceStoreId=store["id"], PaginationConfig={"PageSize": 2}
    )
    page_sizes, samples = [], []
    for page in pages:
        page_sizes.append(len(page["readSets"]))
        samples += [r["sampleId"] for r in page["readSets"]]
    completed = omics.list_read_set_import_jobs(sequenceStoreId=store["id"], filter={"status": "COMPLETED"})

    assert page_sizes == [2, 1] and sorted(samples) == ["s0", "s1", "s2"]
    assert [job["id"] for job in completed["importJobs"]] == [done["id"]]
    assert failed["status"] == "FAILED"


def test_repeated_client_token_returns_the_same_import_job(
    aws: AwsServer, store: dict[str, Any], bucket: str
) -> None:
    uri = put(aws, bucket, "x.fastq.gz", gzip.compress(fastq([("r:0-4", "ACGT")])))
    omics = aws.client("omics")
    first = omics.start_read_set_import_job(
        sequenceStoreId=store["id"], roleArn=ROLE, sources=[source(uri)], clientToken="bucket/key/etag"
    )
    again = omics.start_read_set_import_job(
        sequenceStoreId=store["id"], roleArn=ROLE, sources=[source(uri)], clientToken="bucket/key/etag"
    )

    assert again["id"] == first["id"]
    jobs = omics.list_read_set_import_jobs(sequenceStoreId=store["id"])["importJobs"]
    assert [j["id"] for j in jobs] == [first["id"]]


def test_archived_read_set_is_unreadable_until_activated(
    aws: AwsServer, store: dict[str, Any], bucket: str
) -> None:
    body = gzip.compress(fastq([("r:0-4", "ACGT")]))
    job = run_import(aws, store["id"], [source(put(aws, bucket, "x.fastq.gz", body))])
    read_set_id = job["sources"][0]["readSetId"]
    omics, s3 = aws.client("omics"), aws.client("s3")
    uri = omics.get_read_set_metadata(sequenceStoreId=store["id"], id=read_set_id)["files"]["source1"][
        "s3Access"
    ]["s3Uri"]
    access_point_bucket, key = uri.removeprefix("s3://").split("/", 1)

    assert archive_read_sets(store["id"]) == [read_set_id]

    archived = omics.list_read_sets(sequenceStoreId=store["id"], filter={"status": "ARCHIVED"})["readSets"]
    assert [r["id"] for r in archived] == [read_set_id]
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=access_point_bucket, Key=key)
    assert error.value.response["Error"]["Code"] == "NoSuchKey"

    started = omics.start_read_set_activation_job(
        sequenceStoreId=store["id"], sources=[{"readSetId": read_set_id}]
    )
    activation = wait_for(
        lambda: omics.get_read_set_activation_job(sequenceStoreId=store["id"], id=started["id"]),
        "activation job",
        30,
        until=lambda r: r["status"] in TERMINAL,
    )

    assert activation["status"] == "COMPLETED"
    assert activation["sources"] == [{"readSetId": read_set_id, "status": "FINISHED"}]
    assert omics.get_read_set_metadata(sequenceStoreId=store["id"], id=read_set_id)["status"] == "ACTIVE"
    assert s3.get_object(Bucket=access_point_bucket, Key=key)["Body"].read() == body


def test_unknown_store_is_resource_not_found(aws: AwsServer) -> None:
    with pytest.raises(ClientError) as error:
        aws.client("omics").get_sequence_store(id="1111111111")

    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# --- wire shapes against botocore's omics model ---------------------------------------------------


def shape_problems(shape: Any, value: Any, path: str = "") -> list[str]:
    """Where a raw JSON value departs from a botocore shape: unknown/missing members, types, enums."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected object"]
        problems = [f"{path}.{k}: not in {shape.name}" for k in value if k not in shape.members]
        problems += [f"{path}.{k}: required, missing" for k in shape.required_members if k not in value]
        for key, item in value.items():
            if key in shape.members:
                problems += shape_problems(shape.members[key], item, f"{path}.{key}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected list"]
        return [p for i, item in enumerate(value) for p in shape_problems(shape.member, item, f"{path}[{i}]")]
    if kind == "map":
        return [p for k, item in value.items() for p in shape_problems(shape.value, item, f"{path}.{k}")]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected string"]
        return [f"{path}: {value!r} not in {shape.enum}"] if shape.enum and value not in shape.enum else []
    if kind in ("integer", "long"):
        return [] if isinstance(value, int) else [f"{path}: expected integer"]
    if kind == "timestamp":
        return [] if isinstance(value, str | int | float) else [f"{path}: expected timestamp"]
    return []


def test_every_response_matches_the_botocore_output_shape(aws: AwsServer, bucket: str) -> None:
    omics = aws.client("omics")
    raw: dict[str, tuple[Any, bytes]] = {}

    def capture(http_response: Any, model: Any, **_: Any) -> None:
        raw[model.name] = (model.output_shape, http_response.content)

    omics.meta.events.register("after-call.omics", capture)
    store = omics.create_sequence_store(name="shapes", description="wire shapes")
    omics.get_sequence_store(id=store["id"])
    omics.list_sequence_stores()
    uri = put(aws, bucket, "x.fastq.gz", gzip.compress(fastq([("r:0-4", "ACGT")])))
    job = omics.start_read_set_import_job(sequenceStoreId=store["id"], roleArn=ROLE, sources=[source(uri)])
    wait_for(
        lambda: omics.get_read_set_import_job(sequenceStoreId=store["id"], id=job["id"]),
        "import job",
        until=lambda r: r["status"] in TERMINAL,
    )
    omics.list_read_set_import_jobs(sequenceStoreId=store["id"])
    read_set_id = omics.list_read_sets(sequenceStoreId=store["id"])["readSets"][0]["id"]
    omics.get_read_set_metadata(sequenceStoreId=store["id"], id=read_set_id)
    archive_read_sets(store["id"])
    activation = omics.start_read_set_activation_job(
        sequenceStoreId=store["id"], sources=[{"readSetId": read_set_id}]
    )
    omics.get_read_set_activation_job(sequenceStoreId=store["id"], id=activation["id"])

    assert len(raw) == 10
    problems = {name: shape_problems(shape, json.loads(body)) for name, (shape, body) in raw.items()}
    assert problems == {name: [] for name in raw}
    s3_access = json.loads(raw["GetSequenceStore"][1])["s3Access"]
    assert s3_access["s3Uri"].startswith("s3://") and s3_access["s3AccessPointArn"].startswith("arn:aws:s3:")


def test_requests_with_storage_host_prefix_are_served(aws: AwsServer, tmp_path: Path) -> None:
    """A client that keeps host-prefix injection on still reaches the emulation.

    Names like `control-storage-localhost` do not resolve, so the request is sent to 127.0.0.1 with
    the prefixed Host header kept - what a proxy or a wildcard DNS name would deliver.
    """
    import boto3
    from botocore.config import Config

    port = aws.endpoint_url.rsplit(":", 1)[1]
    omics = boto3.client(
        "omics",
        endpoint_url=f"http://localhost:{port}",
        region_name=aws.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(inject_host_prefix=True),
    )
    hosts: list[str] = []

    def keep_host_send_to_loopback(request: Any, **_: Any) -> None:
        host = request.url.split("/")[2]
        hosts.append(host)
        request.headers["Host"] = host
        request.url = request.url.replace(host, f"127.0.0.1:{port}", 1)

    omics.meta.events.register("before-send.omics", keep_host_send_to_loopback)

    created = omics.create_sequence_store(name="prefixed")

    assert hosts == [f"control-storage-localhost:{port}"]
    assert aws.client("omics").get_sequence_store(id=created["id"])["name"] == "prefixed"


def test_event_delivery_failure_does_not_fail_the_import(
    aws: AwsServer, store: dict[str, Any], bucket: str
) -> None:
    """EventBridge delivery is best effort: moto cannot deliver to a Lambda target, the job still completes."""
    events = aws.client("events")
    events.put_rule(Name="to-lambda", EventPattern=json.dumps({"source": ["aws.omics"]}))
    events.put_targets(
        Rule="to-lambda",
        Targets=[{"Id": "fn", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:start-training"}],
    )
    try:
        uri = put(aws, bucket, "x.fastq.gz", gzip.compress(fastq([("r:0-4", "ACGT")])))

        job = run_import(aws, store["id"], [source(uri)])
    finally:
        events.remove_targets(Rule="to-lambda", Ids=["fn"])
        events.delete_rule(Name="to-lambda")

    assert job["status"] == "COMPLETED"
    emitted = [e["detail"]["status"] for e in aws.events.history if e["detail"].get("id") == job["id"]]
    assert emitted == ["IN_PROGRESS", "COMPLETED"]
