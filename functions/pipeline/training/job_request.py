"""The CreateTrainingJob request: the one source of every training job's settings.

start_training (and deploy_model's follow-up, the reconciler) sends it with boto3;
`hyenaflow train` (hyenaflow/manual_training.py) hands the same request to the sagemaker SDK's
ModelTrainer. So both run the same train.py from the same bundle with the same hyperparameters,
metric definitions, checkpoints, spot settings and tags. Plain values in, a dict out: no
Powertools and no AWS calls here, so the CLI can import it without the Lambda runtime.

The job uses the SageMaker PyTorch training toolkit's script mode, which both the stock and the
amzn2023 PyTorch training images run (`SAGEMAKER_TRAINING_MODULE`): `sagemaker_program` names
the entry point inside `sagemaker_submit_directory` (the bundle's S3 URI), and
`sagemaker_torch_distributed_enabled` makes it launch with torchrun (instance_gpus.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pipeline.training.instance_gpus import training_launch
from pipeline.training.metrics import METRIC_DEFINITIONS
from pipeline.training.settings import TrainingSettings

TRAIN_CHANNEL = "train"  # train.py reads SM_CHANNEL_TRAIN
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
TENSORBOARD_LOCAL_PATH = "/opt/ml/output/tensorboard"
TRIGGER_TAG = "hyenaflow:trigger"


def training_hyperparameters(
    settings: TrainingSettings, *, warm_start_model_uri: str | None, region: str | None
) -> dict[str, str]:
    """train.py's arguments plus the toolkit's `sagemaker_*` keys (all strings: SageMaker's rule)."""
    hyperparameters = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": settings.training_source_uri,
        "max_steps": str(settings.max_steps),
        "max_length": str(settings.max_length),
        "batch_size": str(settings.batch_size),
        "learning_rate": repr(settings.learning_rate),
        "model_size": settings.model_size,
        **settings.training_extra_hyperparameters,
    }
    if region:
        hyperparameters["sagemaker_region"] = region
    if training_launch(settings.training_instance_type, settings.training_instance_count).torchrun:
        hyperparameters["sagemaker_torch_distributed_enabled"] = "true"
    if warm_start_model_uri:
        hyperparameters["init_from"] = warm_start_model_uri
    return hyperparameters


def build_training_request(
    settings: TrainingSettings,
    *,
    job_name: str,
    trigger: str,
    read_sets_s3_uri: str,
    warm_start_model_uri: str | None,
    region: str | None,
    read_sets_data_type: Literal["S3Prefix", "ManifestFile"] = "S3Prefix",
) -> dict[str, Any]:
    """The CreateTrainingJob request (plain function: unit tests check it field by field).

    `read_sets_s3_uri` is a prefix (the sequence store's access point) or, with ManifestFile, a
    manifest listing the read sets' files.
    """
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": settings.max_runtime_seconds}
    if settings.use_spot:
        stopping["MaxWaitTimeInSeconds"] = settings.spot_max_wait_seconds
    return {
        "TrainingJobName": job_name,
        "RoleArn": settings.sagemaker_role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": settings.training_image_uri,
            "TrainingInputMode": settings.training_input_mode,
            "MetricDefinitions": METRIC_DEFINITIONS,
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "HyperParameters": training_hyperparameters(
            settings, warm_start_model_uri=warm_start_model_uri, region=region
        ),
        "InputDataConfig": [
            {
                "ChannelName": TRAIN_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": read_sets_data_type,
                        "S3Uri": read_sets_s3_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": settings.model_output_prefix},
        "ResourceConfig": {
            "InstanceType": settings.training_instance_type,
            "InstanceCount": settings.training_instance_count,
            "VolumeSizeInGB": settings.training_volume_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": settings.use_spot,
        "CheckpointConfig": {
            "S3Uri": f"{settings.checkpoint_prefix}{job_name}/",
            "LocalPath": CHECKPOINT_LOCAL_PATH,
        },
        "TensorBoardOutputConfig": {
            "S3OutputPath": settings.tensorboard_prefix,
            "LocalPath": TENSORBOARD_LOCAL_PATH,
        },
        "Tags": [{"Key": TRIGGER_TAG, "Value": trigger}],
    }
