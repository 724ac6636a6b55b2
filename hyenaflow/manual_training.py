"""`hyenaflow train`: one SageMaker training job on chosen read sets or an S3 prefix.

The original notebooks launched their training jobs by hand with the sagemaker SDK; this does the
same with the SDK's `ModelTrainer` (sagemaker-train, the `sdk` dependency group), but the job is
the one start_training would create: `pipeline.training.job_request.build_training_request`
(the Lambda package, imported from `functions/`) builds the request for both, from the deployed
start_training function's own settings (its environment: the stack's template parameters as the
Lambda sees them). Same image, bundle, hyperparameters, metric definitions, checkpoint and spot
settings and tags; `ModelTrainer` sends it.

The job's name starts with the stack's job prefix (`<prefix>-manual-<token>-<SDK timestamp>`),
so its end reaches deploy_model through the same EventBridge rule: the quality gate decides
whether it replaces the serving model, as for any job. It does not take the training slot (the
pipeline's own jobs keep theirs; deploy_model only marks a job it did not start as handled).

How the SDK is used, and why:
- no `SourceCode`: ModelTrainer would upload the code as a `code` channel and run it through its
  own bash driver; the job instead names the uploaded bundle in the toolkit's script-mode
  hyperparameters (`sagemaker_program`, `sagemaker_submit_directory`), as start_training does,
  so the image's SageMaker toolkit runs train.py the same way (torchrun on several GPUs);
- `SAGEMAKER_VALIDATE_ROLE=false`: the SDK's role smoke test (iam:SimulatePrincipalPolicy)
  demands VPC (ec2:*NetworkInterface*) permissions the stack's role deliberately lacks;
- `EnableSageMakerMetricsTimeSeries` has no ModelTrainer parameter: a botocore hook on the
  session adds it to the CreateTrainingJob call (research notes A3: the clients the SDK creates
  from the session inherit its hooks).

Read sets are given to the job as a SageMaker manifest (S3DataType ManifestFile) listing their
files under the sequence store's S3 URI, uploaded to `s3://<data bucket>/manifests/`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hyenaflow.packaging import REPO_ROOT

if TYPE_CHECKING:
    from pipeline.training.settings import TrainingSettings

START_TRAINING_FUNCTION = "StartTrainingFunction"  # template.yaml logical id
MANUAL_TRIGGER = "manual"  # the hyenaflow:trigger tag of jobs started by hand
MANIFEST_PREFIX = "manifests/"


def use_lambda_package() -> None:
    """Make `pipeline` (functions/pipeline, the Lambdas' shared package) importable, as the
    Lambda runtime does with its code root; the CLI shares its job request and settings."""
    functions = str(REPO_ROOT / "functions")
    if functions not in sys.path:
        sys.path.append(functions)


@dataclass(frozen=True)
class TrainingData:
    """The job's `train` channel: an S3 prefix, or a manifest listing the files."""

    s3_uri: str
    data_type: Literal["S3Prefix", "ManifestFile"] = "S3Prefix"


def deployed_training_settings(session: Any, stack_name: str) -> TrainingSettings:
    """start_training's settings, read from the deployed function's environment."""
    use_lambda_package()
    from pipeline.settings import load_settings
    from pipeline.training.settings import TrainingSettings

    resource = session.client("cloudformation").describe_stack_resource(
        StackName=stack_name, LogicalResourceId=START_TRAINING_FUNCTION
    )["StackResourceDetail"]
    configuration = session.client("lambda").get_function_configuration(
        FunctionName=resource["PhysicalResourceId"]
    )
    environment = dict((configuration.get("Environment") or {}).get("Variables") or {})
    environment.setdefault("AWS_REGION", session.region_name)  # the Lambda runtime's own variable
    return load_settings(TrainingSettings, environment)


def new_job_base_name(settings: TrainingSettings) -> str:
    """`<prefix>-manual-<token>`: deploy_model's rule matches the prefix; ModelTrainer appends a
    timestamp (15 characters), so the base stays within 48 of SageMaker's 63."""
    use_lambda_package()
    from pipeline.training.sagemaker_names import sagemaker_name

    name = sagemaker_name(settings.job_name_prefix, f"{MANUAL_TRIGGER}-{secrets.token_hex(3)}")
    return name[:48].rstrip("-")


def read_sets_manifest(omics: Any, sequence_store_id: str, read_set_ids: list[str]) -> list[Any]:
    """A SageMaker manifest of the read sets' files (GetReadSetMetadata's S3 URIs).

    Entries are relative to the store's S3 URI, so the job sees `<read set id>/<file>` under its
    channel, as with the whole store (`readSet/<id>/<file>`).
    """
    store_uri = omics.get_sequence_store(id=sequence_store_id)["s3Access"]["s3Uri"]
    prefix = store_uri.rstrip("/") + "/"
    entries: list[Any] = [{"prefix": prefix}]
    for read_set_id in read_set_ids:
        metadata = omics.get_read_set_metadata(id=read_set_id, sequenceStoreId=sequence_store_id)
        if metadata.get("status") != "ACTIVE":
            raise SystemExit(
                f"read set {read_set_id} is {metadata.get('status')}: only ACTIVE read sets can be read "
                "(archived ones: aws omics start-read-set-activation-job)"
            )
        for part in ("source1", "source2"):
            uri = ((metadata.get("files") or {}).get(part) or {}).get("s3Access", {}).get("s3Uri")
            if not uri:
                continue
            if not uri.startswith(prefix):
                raise SystemExit(f"read set {read_set_id}: {uri} is not under the store's {prefix}")
            entries.append(uri[len(prefix) :])
    return entries


def upload_manifest(s3: Any, bucket: str, name: str, manifest: list[Any]) -> TrainingData:
    key = f"{MANIFEST_PREFIX}{name}.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode(), ContentType="application/json")
    return TrainingData(s3_uri=f"s3://{bucket}/{key}", data_type="ManifestFile")


def manual_job_request(
    settings: TrainingSettings, *, base_name: str, data: TrainingData, warm_start_model_uri: str | None
) -> dict[str, Any]:
    """The CreateTrainingJob request start_training would send for this data."""
    use_lambda_package()
    from pipeline.training.job_request import build_training_request

    return build_training_request(
        settings,
        job_name=base_name,
        trigger=MANUAL_TRIGGER,
        read_sets_s3_uri=data.s3_uri,
        read_sets_data_type=data.data_type,
        warm_start_model_uri=warm_start_model_uri,
        region=settings.aws_region,
    )


def model_trainer(request: dict[str, Any], boto_session: Any) -> Any:
    """A ModelTrainer that sends `request` (one built by build_training_request)."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import (
        Channel,
        CheckpointConfig,
        Compute,
        DataSource,
        MetricDefinition,
        OutputDataConfig,
        S3DataSource,
        StoppingCondition,
        Tag,
        TensorBoardOutputConfig,
    )

    algorithm, resources = request["AlgorithmSpecification"], request["ResourceConfig"]
    stopping, checkpoint = request["StoppingCondition"], request["CheckpointConfig"]
    tensorboard = request["TensorBoardOutputConfig"]
    channels = [
        Channel(
            channel_name=channel["ChannelName"],
            data_source=DataSource(
                s3_data_source=S3DataSource(
                    s3_data_type=channel["DataSource"]["S3DataSource"]["S3DataType"],
                    s3_uri=channel["DataSource"]["S3DataSource"]["S3Uri"],
                    s3_data_distribution_type=channel["DataSource"]["S3DataSource"]["S3DataDistributionType"],
                )
            ),
        )
        for channel in request["InputDataConfig"]
    ]
    with _role_validation_off():  # ModelTrainer resolves (and would validate) the role when built
        trainer = ModelTrainer(
            sagemaker_session=Session(boto_session=boto_session),
            role=request["RoleArn"],
            base_job_name=request["TrainingJobName"],
            training_image=algorithm["TrainingImage"],
            training_input_mode=algorithm["TrainingInputMode"],
            hyperparameters=request["HyperParameters"],
            compute=Compute(
                instance_type=resources["InstanceType"],
                instance_count=resources["InstanceCount"],
                volume_size_in_gb=resources["VolumeSizeInGB"],
                enable_managed_spot_training=request["EnableManagedSpotTraining"],
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=stopping["MaxRuntimeInSeconds"],
                max_wait_time_in_seconds=stopping.get("MaxWaitTimeInSeconds"),
            ),
            input_data_config=channels,
            output_data_config=OutputDataConfig(s3_output_path=request["OutputDataConfig"]["S3OutputPath"]),
            checkpoint_config=CheckpointConfig(
                s3_uri=checkpoint["S3Uri"], local_path=checkpoint["LocalPath"]
            ),
            tags=[Tag(key=tag["Key"], value=tag["Value"]) for tag in request["Tags"]],
        )
    trainer.with_metric_definitions(
        [MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in algorithm["MetricDefinitions"]]
    )
    trainer.with_tensorboard_output_config(
        TensorBoardOutputConfig(
            s3_output_path=tensorboard["S3OutputPath"], local_path=tensorboard["LocalPath"]
        )
    )
    return trainer


@contextlib.contextmanager
def _role_validation_off() -> Iterator[None]:
    """SAGEMAKER_VALIDATE_ROLE=false while the trainer is built (the module docstring says why)."""
    saved = os.environ.get("SAGEMAKER_VALIDATE_ROLE")
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SAGEMAKER_VALIDATE_ROLE", None)
        else:
            os.environ["SAGEMAKER_VALIDATE_ROLE"] = saved


def complete_sdk_request(boto_session: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Add what ModelTrainer has no parameter for to its CreateTrainingJob call; returns the dict
    the call's parameters are copied into once sent (its job name among them)."""
    sent: dict[str, Any] = {}

    def complete(params: dict[str, Any], **_: Any) -> None:
        params["AlgorithmSpecification"]["EnableSageMakerMetricsTimeSeries"] = request[
            "AlgorithmSpecification"
        ]["EnableSageMakerMetricsTimeSeries"]
        sent.update(params)

    boto_session.events.register("provide-client-params.sagemaker.CreateTrainingJob", complete)
    return sent


def _omics_client(boto_session: Any) -> Any:
    # As pipeline/aws_clients.py: HealthOmics' control-storage- host prefix cannot go in front of
    # a local endpoint (127.0.0.1), so it is left off whenever AWS_ENDPOINT_URL points elsewhere.
    from botocore.config import Config

    return boto_session.client(
        "omics", config=Config(inject_host_prefix=not os.environ.get("AWS_ENDPOINT_URL"))
    )


def start_manual_training(
    boto_session: Any,
    settings: TrainingSettings,
    *,
    read_set_ids: list[str] | None = None,
    s3_uri: str | None = None,
    warm_start: bool = True,
    wait: bool = False,
) -> str:
    """Launch the job with ModelTrainer; returns its name."""
    use_lambda_package()
    from pipeline.state_table import PipelineState

    if bool(read_set_ids) == bool(s3_uri):
        raise ValueError("give either read set ids or an S3 prefix")
    base_name = new_job_base_name(settings)
    if read_set_ids:
        manifest = read_sets_manifest(_omics_client(boto_session), settings.sequence_store_id, read_set_ids)
        data = upload_manifest(boto_session.client("s3"), settings.data_bucket, base_name, manifest)
    else:
        data = TrainingData(s3_uri=s3_uri or "")
    serving = (
        PipelineState(boto_session.client("dynamodb"), settings.state_table).serving_model()
        if warm_start
        else None
    )
    request = manual_job_request(
        settings,
        base_name=base_name,
        data=data,
        warm_start_model_uri=(serving or {}).get("model_data_url"),
    )
    sent = complete_sdk_request(boto_session, request)
    model_trainer(request, boto_session).train(wait=wait, logs=wait)
    return sent["TrainingJobName"]
