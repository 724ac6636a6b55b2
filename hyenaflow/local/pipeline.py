"""The whole pipeline on one machine: `LocalPipeline` starts it, runs it and shuts it down.

    with LocalPipeline(PipelineConfig(workdir=Path(".hyenaflow-local"))) as pipeline:
        pipeline.put_file(Path("data/lambda_phage_NC_001416.fa"))
        ...

What `start()` does, in order (as `sam deploy` would create the stack, then AWS run it):
1. starts the local AWS endpoint (hyenaflow.local.aws_server: moto + HealthOmics emulation +
   SageMaker emulation) and makes moto S3 emit EventBridge events in AWS's shape (s3_events.py);
2. creates what template.yaml declares and the flow needs (buckets with their EventBridge
   notification setting, DynamoDB tables with their keys, SNS topics, SQS queues, IAM roles,
   HealthOmics sequence stores), so every `!Ref`/`!GetAtt` resolves to a local resource;
3. uploads the training code bundle (hyenaflow.packaging) to the data bucket, where
   `sam deploy` users put it with `hyenaflow upload-training-code`;
4. creates the template's EventBridge rules with their real patterns (hyenaflow.local.event_routing)
   and starts the delivery loop that runs the functions' handlers (hyenaflow.local.lambda_runtime).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyenaflow.local.account import ACCOUNT_ID
from hyenaflow.local.aws_server import AwsServer, start_aws_server
from hyenaflow.local.event_routing import EventRouter, ScheduleClock, routes_from_template
from hyenaflow.local.lambda_runtime import (
    DEFAULT_RETRY_DELAYS_S,
    DeliveryLoop,
    InvocationResult,
    LambdaFunction,
    LambdaRuntime,
    functions_from_template,
)
from hyenaflow.local.s3_events import install_s3_eventbridge_hook
from hyenaflow.local.template import IntrinsicResolver, LocalResource, load_template, resource_enabled
from hyenaflow.local.training_budget import local_training_budget

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINING_CODE_KEY = "code/training/sourcedir.tar.gz"

# Function variables that differ on one machine, on top of the training budget (training_budget.py).
LOCAL_ENVIRONMENT = {
    "USE_SPOT": "false",
    # Blue/green waits are for real fleets; locally the new endpoint config serves at once.
    "BAKE_SECONDS": "0",
    "TERMINATION_WAIT_SECONDS": "0",
}
# Template parameters without a default that `make deploy` fills in (hyenaflow/deploy_parameters.py):
# the images it resolves for us-east-1 and the default instance types. The local runners ignore
# images; tests/unit/test_default_images.py keeps these equal to what make deploy resolves.
LOCAL_PARAMETERS = {
    "TrainingImageUri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2.13-cu133-amzn2023-sagemaker",
    "InferenceImageUri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu-py312",
}
# `HYENAFLOW_LOCAL_<VAR>=value` in the environment overrides function variable <VAR> locally.
LOCAL_OVERRIDE_PREFIX = "HYENAFLOW_LOCAL_"


@dataclass
class PipelineConfig:
    workdir: Path
    template_path: Path = REPO_ROOT / "template.yaml"
    region: str = "us-east-1"
    stack_name: str = "hyenaflow-local"
    host: str = "127.0.0.1"
    port: int = 0
    # Environment variables set on every function after the template's own (local_environment_overrides()).
    environment_overrides: dict[str, str] = field(default_factory=dict)
    upload_training_code: bool = True
    # Lambda retries a failed asynchronous invocation after about 1 and 2 minutes; locally sooner.
    retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S
    on_invocation: Callable[[LambdaFunction, Any, InvocationResult], None] | None = None
    # False: events stay in the functions' invoke queues (tests of the routing alone).
    deliver: bool = True
    # Function (logical id or name) -> seconds: fire its template schedule on this shortened clock.
    schedule_every_s: dict[str, float] = field(default_factory=dict)
    # How the HealthOmics emulation names read-set files: "upload" (as observed) or "source" (source1).
    read_set_file_names: str = "upload"


def local_environment_overrides(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The local training budget and LOCAL_ENVIRONMENT, then HYENAFLOW_LOCAL_* variables of this
    process, then `extra`: what `hyenaflow local up` and `hyenaflow demo` set on the functions."""
    overrides = {**local_training_budget(), **LOCAL_ENVIRONMENT}
    for name, value in os.environ.items():
        if name.startswith(LOCAL_OVERRIDE_PREFIX) and len(name) > len(LOCAL_OVERRIDE_PREFIX):
            overrides[name[len(LOCAL_OVERRIDE_PREFIX) :]] = value
    overrides.update(extra or {})
    return overrides


class LocalPipeline:
    """template.yaml running on the local AWS server. Use as a context manager, or call
    `start()` / `stop()`."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.workdir = Path(config.workdir).resolve()
        self.template: dict[str, Any] = load_template(config.template_path)
        self.resources: dict[str, LocalResource] = {}
        self.parameters: dict[str, str] = {}
        self.aws: AwsServer | None = None
        self.router: EventRouter | None = None
        self.runtime: LambdaRuntime | None = None
        self.functions: dict[str, LambdaFunction] = {}
        self._loop: DeliveryLoop | None = None
        self._clock: ScheduleClock | None = None
        self._undo_s3_hook: Callable[[], None] | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> LocalPipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalPipeline:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._undo_s3_hook = install_s3_eventbridge_hook()
        try:
            self.aws = start_aws_server(
                self.workdir / "aws",
                port=self.config.port,
                host=self.config.host,
                region=self.config.region,
                read_set_file_names=self.config.read_set_file_names,
            )
            self._create_resources()
            resolver = self._resolver()
            self.functions = functions_from_template(
                self.template,
                resolver,
                self.config.template_path.parent,
                self.config.region,
                self.config.stack_name,
            )
            for function in self.functions.values():
                function.environment.update(self.config.environment_overrides)
            self.router = EventRouter(
                self.client("events"), self.client("sqs"), routes_from_template(self.template, resolver)
            )
            self.router.create()
            if self.config.upload_training_code:
                self.upload_training_code()
            self.runtime = LambdaRuntime(
                self.functions,
                base_environment=self.aws.env(),
                sqs_client=self.client("sqs"),
                sns_client=self.client("sns"),
                log_dir=self.workdir / "logs" / "lambda",
                queue_urls=self.router.queue_urls,
                retry_delays_s=self.config.retry_delays_s,
                on_invocation=self.config.on_invocation,
                accept=lambda function_id, event, scheduled: (
                    scheduled or self.router.template_matches(function_id, event)
                ),
            )
            self.runtime.start()
            if self.config.deliver:
                self._loop = DeliveryLoop(self.runtime)
                self._loop.start()
            if self.config.schedule_every_s:
                every_s = {
                    self.function(name).logical_id: s for name, s in self.config.schedule_every_s.items()
                }
                self._clock = ScheduleClock(self.router, every_s, self.config.region)
                self._clock.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._clock is not None:
            self._clock.stop()
            self._clock = None
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
        if self.runtime is not None:
            self.runtime.stop()
        if self.aws is not None:
            self.aws.stop()
            self.aws = None
        if self._undo_s3_hook is not None:
            self._undo_s3_hook()
            self._undo_s3_hook = None

    # -- access ----------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return self.aws.endpoint_url

    def client(self, service: str) -> Any:
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self.aws.client(service)
            return self._clients[service]

    def env(self) -> dict[str, str]:
        """Variables that point the AWS CLI / boto3 / `hyenaflow invoke` at this stack."""
        return self.aws.env()

    def resource_of_type(
        self, resource_type: str, predicate: Callable[[dict[str, Any]], bool] | None = None
    ) -> str:
        """Logical id of the one enabled resource of `resource_type` (matching `predicate`)."""
        matches = [
            logical_id
            for logical_id, resource in self.template["Resources"].items()
            if resource.get("Type") == resource_type
            and logical_id in self.resources
            and (predicate is None or predicate(resource.get("Properties", {})))
        ]
        if len(matches) != 1:
            raise LookupError(f"template.yaml: expected one {resource_type}, found {matches}")
        return matches[0]

    @property
    def data_bucket(self) -> str:
        """The bucket that sends S3 events to EventBridge (where incoming/ files land)."""
        logical_id = self.resource_of_type(
            "AWS::S3::Bucket",
            lambda p: bool(p.get("NotificationConfiguration", {}).get("EventBridgeConfiguration")),
        )
        return self.resources[logical_id].ref

    @property
    def state_table(self) -> str:
        return self.resources[self.resource_of_type("AWS::DynamoDB::Table")].ref

    @property
    def model_package_group(self) -> str:
        """The model registry's group (template resource AWS::SageMaker::ModelPackageGroup)."""
        logical_id = self.resource_of_type("AWS::SageMaker::ModelPackageGroup")
        return self.resources[logical_id].attributes["ModelPackageGroupName"]

    @property
    def endpoint_name(self) -> str:
        """The endpoint deploy_model creates and updates (template parameter EndpointName)."""
        return self.parameters["EndpointName"]

    @property
    def sequence_store_id(self) -> str:
        for logical_id, resource in self.template["Resources"].items():
            if resource.get("Type") == "AWS::Omics::SequenceStore" and logical_id in self.resources:
                return self.resources[logical_id].ref
        for name, value in self.parameters.items():
            if "SequenceStore" in name:
                return value
        raise LookupError("template.yaml declares no HealthOmics sequence store")

    def function(self, name: str) -> LambdaFunction:
        """A function by logical id or by (local) function name."""
        for function in self.functions.values():
            if name in (function.logical_id, function.name):
                return function
        raise KeyError(f"no function {name!r} in template.yaml (functions: {sorted(self.functions)})")

    def function_for_handler(self, module: str) -> LambdaFunction:
        """The function whose Handler lives in `module` (e.g. "ingest_fasta")."""
        matches = [f for f in self.functions.values() if f.handler.split(".")[0] == module]
        if len(matches) != 1:
            raise LookupError(
                f"template.yaml: expected one function with Handler {module}.*, found {len(matches)}"
            )
        return matches[0]

    def update_function_environment(self, name: str, variables: Mapping[str, str]) -> None:
        """Change a function's environment variables, as `sam deploy --parameter-overrides` (or
        `aws lambda update-function-configuration`) does in AWS: later invocations see them."""
        assert self.runtime is not None, "stack not started"
        self.runtime.update_function_environment(self.function(name).logical_id, variables)

    def training_log(self, training_job_name: str) -> Path:
        """Where the SageMaker emulation writes the training job's output."""
        return self.aws.workdir / "sagemaker" / "training" / training_job_name / "training.log"

    def put_file(self, path: Path, key: str | None = None) -> str:
        """Upload a local file into the data bucket (default key: incoming/<file name>)."""
        key = key or f"incoming/{path.name}"
        self.client("s3").upload_file(str(path), self.data_bucket, key)
        return key

    def fire_schedule(self, function_name: str) -> dict[str, Any]:
        """Deliver the event one of the function's template schedules would send now."""
        assert self.router is not None, "stack not started"
        return self.router.fire_schedule(self.function(function_name).logical_id, self.config.region)

    def upload_training_code(self) -> str:
        """Build the training source bundle and put it at s3://<data bucket>/code/training/."""
        from hyenaflow.packaging import build_training_bundle

        bundle = self.workdir / "build" / "sourcedir.tar.gz"
        bundle.parent.mkdir(parents=True, exist_ok=True)
        build_training_bundle(bundle)
        self.client("s3").upload_file(str(bundle), self.data_bucket, TRAINING_CODE_KEY)
        return f"s3://{self.data_bucket}/{TRAINING_CODE_KEY}"

    def delivery_errors(self) -> list[str]:
        return list(self._loop.errors) if self._loop else []

    # -- resources from the template --------------------------------------------------------

    def _resolver(self) -> IntrinsicResolver:
        return IntrinsicResolver(
            self.template, self.resources, self.parameters, self.config.region, self.config.stack_name
        )

    def _physical_name(self, logical_id: str, max_len: int = 63) -> str:
        return re.sub(r"[^a-z0-9-]", "-", f"{self.config.stack_name}-{logical_id}".lower())[:max_len].strip(
            "-"
        )

    def _create_resources(self) -> None:
        self._set_parameters()
        creators: dict[str, Callable[[str, dict[str, Any]], LocalResource]] = {
            "AWS::IAM::Role": self._create_role,
            "AWS::S3::Bucket": self._create_bucket,
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::SNS::Topic": self._create_topic,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::Omics::SequenceStore": self._create_sequence_store,
            "AWS::CloudWatch::Alarm": self._create_alarm,
            "AWS::SageMaker::ModelPackageGroup": self._create_model_package_group,
        }
        resources = self.template["Resources"]
        # Functions and other resources that only need a name first, so properties may !Ref them.
        for logical_id, resource in resources.items():
            if resource.get("Type") not in creators:
                self.resources[logical_id] = self._placeholder(logical_id, resource)
        resolver = self._resolver()
        for resource_type, create in creators.items():
            for logical_id, resource in resources.items():
                if resource.get("Type") != resource_type or not resource_enabled(resource, resolver):
                    continue
                properties = self._resolve_leniently(resource.get("Properties", {}), resolver)
                self.resources[logical_id] = create(logical_id, properties)
        # Placeholders whose names may now be resolved (e.g. FunctionName: !Sub ...).
        for logical_id, resource in resources.items():
            if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                self.resources[logical_id] = self._placeholder(logical_id, resource, resolver)

    def _set_parameters(self) -> None:
        for name, spec in self.template.get("Parameters", {}).items():
            if "Default" in spec:
                value = spec["Default"]
                self.parameters[name] = ",".join(value) if isinstance(value, list) else str(value)
            if not self.parameters.get(name) and name in LOCAL_PARAMETERS:
                self.parameters[name] = LOCAL_PARAMETERS[name]

    def _resolve_leniently(self, value: Any, resolver: IntrinsicResolver) -> Any:
        """Resolve properties whose references exist; drop the few that point at resources the
        local stack does not create (KMS keys, log groups ...)."""
        if isinstance(value, dict):
            try:
                return resolver.resolve(value)
            except KeyError:
                out = {}
                for key, item in value.items():
                    try:
                        out[key] = self._resolve_leniently(item, resolver)
                    except KeyError:
                        continue
                return out
        try:
            return resolver.resolve(value)
        except KeyError:
            return None

    def _placeholder(
        self, logical_id: str, resource: dict[str, Any], resolver: IntrinsicResolver | None = None
    ) -> LocalResource:
        region = self.config.region
        kind = resource.get("Type", "")
        properties = resource.get("Properties", {}) or {}
        name = self._physical_name(logical_id)
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            if resolver is not None and properties.get("FunctionName"):
                try:
                    name = str(resolver.resolve(properties["FunctionName"]))
                except KeyError:
                    pass
            else:
                name = f"{self.config.stack_name}-{logical_id}"
            arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
            return LocalResource(name, {"Arn": arn})
        service = kind.split("::")[1].lower() if kind.count("::") >= 2 else "cloudformation"
        arn = f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{logical_id.lower()}/{name}"
        return LocalResource(name, {"Arn": arn, "Name": name, "Id": name, "KeyId": name})

    def _create_role(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        name = properties.get("RoleName") or self._physical_name(logical_id, 64)
        policy = properties.get("AssumeRolePolicyDocument") or {"Version": "2012-10-17", "Statement": []}
        role = self.client("iam").create_role(
            RoleName=name,
            Path=properties.get("Path", "/"),
            AssumeRolePolicyDocument=policy if isinstance(policy, str) else json.dumps(policy),
        )["Role"]
        return LocalResource(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def _create_bucket(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        name = properties.get("BucketName") or self._physical_name(logical_id)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if properties.get("NotificationConfiguration", {}).get("EventBridgeConfiguration"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        if properties.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return LocalResource(
            name,
            {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{self.config.region}.amazonaws.com",
            },
        )

    def _create_table(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        name = properties.get("TableName") or self._physical_name(logical_id)
        arguments: dict[str, Any] = {
            "TableName": name,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if properties.get("GlobalSecondaryIndexes"):
            arguments["GlobalSecondaryIndexes"] = [
                {key: value for key, value in index.items() if key != "ProvisionedThroughput"}
                for index in properties["GlobalSecondaryIndexes"]
            ]
        table = self.client("dynamodb").create_table(**arguments)["TableDescription"]
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            self.client("dynamodb").update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        return LocalResource(
            name, {"Arn": table["TableArn"], "StreamArn": f"{table['TableArn']}/stream/local"}
        )

    def _create_topic(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        name = properties.get("TopicName") or self._physical_name(logical_id, 256)
        arn = self.client("sns").create_topic(Name=name)["TopicArn"]
        return LocalResource(arn, {"TopicArn": arn, "TopicName": name})

    def _create_queue(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        name = properties.get("QueueName") or self._physical_name(logical_id, 80)
        attributes = {
            key: str(properties[key])
            for key in ("MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds")
            if key in properties
        }
        if properties.get("FifoQueue"):
            attributes["FifoQueue"] = "true"
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return LocalResource(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _create_alarm(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        # deploy_model names these alarms as the endpoint update's auto-rollback alarms.
        name = properties.get("AlarmName") or self._physical_name(logical_id, 255)
        arguments = {
            key: properties[key]
            for key in (
                "Namespace",
                "MetricName",
                "Dimensions",
                "Statistic",
                "Period",
                "EvaluationPeriods",
                "Threshold",
                "ComparisonOperator",
                "TreatMissingData",
                "AlarmActions",
                "AlarmDescription",
                "Metrics",
            )
            if key in properties
        }
        for key in ("Period", "EvaluationPeriods"):
            if key in arguments:
                arguments[key] = int(arguments[key])
        if "Threshold" in arguments:
            arguments["Threshold"] = float(arguments["Threshold"])
        cloudwatch = self.client("cloudwatch")
        cloudwatch.put_metric_alarm(AlarmName=name, **arguments)
        arn = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
        return LocalResource(name, {"Arn": arn})

    def _create_model_package_group(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        name = properties.get("ModelPackageGroupName") or self._physical_name(logical_id)
        arguments = {"ModelPackageGroupName": name}
        if properties.get("ModelPackageGroupDescription"):
            arguments["ModelPackageGroupDescription"] = properties["ModelPackageGroupDescription"]
        arn = self.client("sagemaker").create_model_package_group(**arguments)["ModelPackageGroupArn"]
        # CloudFormation: Ref returns the group's ARN.
        return LocalResource(arn, {"ModelPackageGroupArn": arn, "ModelPackageGroupName": name})

    def _create_sequence_store(self, logical_id: str, properties: dict[str, Any]) -> LocalResource:
        omics = self.client("omics")
        arguments = {"name": properties.get("Name") or self._physical_name(logical_id, 127)}
        if properties.get("Description"):
            arguments["description"] = properties["Description"]
        created = omics.create_sequence_store(**arguments)
        store = omics.get_sequence_store(id=created["id"])
        s3_access = store.get("s3Access", {})
        return LocalResource(
            store["id"],
            {
                "SequenceStoreId": store["id"],
                "Arn": store["arn"],
                "S3AccessPointArn": s3_access.get("s3AccessPointArn", ""),
                "S3Uri": s3_access.get("s3Uri", ""),
                "Status": store.get("status", "ACTIVE"),
            },
        )
