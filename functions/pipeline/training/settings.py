"""start_training's, deploy_model's and reconcile's settings, each extending the one before
(pipeline.settings explains the scheme)."""

import json
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.settings import PipelineSettings
from pipeline.training.sagemaker_names import SAGEMAKER_NAME_PATTERN


class TrainingSettings(PipelineSettings):
    sequence_store_id: str = Field(pattern=r"^[0-9]{10,36}$")
    sagemaker_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::")
    training_image_uri: str
    # s3://<bucket>/code/training/sourcedir.tar.gz, uploaded after `sam deploy`.
    training_source_uri: str = Field(pattern=r"^s3://")
    job_name_prefix: str = Field(default="hyenaflow", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,30}$")
    training_instance_type: str = "ml.g5.xlarge"
    training_instance_count: int = Field(default=1, ge=1, le=16)
    training_volume_gb: int = Field(default=50, ge=1, le=16384)
    training_input_mode: Literal["File", "FastFile"] = "File"
    use_spot: bool = True
    max_runtime_seconds: int = Field(default=86400, ge=60, le=28 * 86400)
    # Spot: how long to wait for capacity in total (>= max runtime); 0 = twice the runtime.
    max_wait_seconds: int = Field(default=0, ge=0)
    max_steps: int = Field(default=2000, ge=1)
    max_length: int = Field(default=1024, ge=16)
    batch_size: int = Field(default=8, ge=1)
    learning_rate: float = Field(default=6e-4, gt=0)
    model_size: Literal["tiny", "small", "medium"] = "tiny"
    # JSON object of further train.py arguments, e.g. {"eval_every": "200"}.
    training_extra_hyperparameters: dict[str, str] = Field(default_factory=dict)
    # Reads on the HealthOmics control plane are documented at ~5 TPS for import/activation.
    omics_tps: float = Field(default=4.0, gt=0)
    aws_region: str | None = None  # set by the Lambda runtime; the sagemaker_region hyperparameter

    @field_validator("training_extra_hyperparameters", mode="before")
    @classmethod
    def _parse_json(cls, value: object) -> object:
        if isinstance(value, str):
            parsed = json.loads(value or "{}")
            return {str(k): str(v) for k, v in parsed.items()}
        return value

    @model_validator(mode="after")
    def _spot_wait_covers_runtime(self) -> "TrainingSettings":
        if self.use_spot and self.max_wait_seconds and self.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError("MAX_WAIT_SECONDS must be >= MAX_RUNTIME_SECONDS for managed spot training")
        return self

    @property
    def spot_max_wait_seconds(self) -> int:
        return self.max_wait_seconds or 2 * self.max_runtime_seconds

    @property
    def checkpoint_prefix(self) -> str:
        return f"s3://{self.data_bucket}/checkpoints/"

    @property
    def model_output_prefix(self) -> str:
        return f"s3://{self.data_bucket}/models/"

    @property
    def tensorboard_prefix(self) -> str:
        return f"s3://{self.data_bucket}/tensorboard/"


class DeploySettings(TrainingSettings):
    endpoint_name: str = "hyenaflow"
    inference_image_uri: str
    endpoint_instance_type: str = "ml.m5.xlarge"
    endpoint_instance_count: int = Field(default=1, ge=1, le=20)
    # Deploy when new_ppl <= serving_ppl * (1 + margin); 0.0 = never worse than what serves.
    quality_gate_margin: float = Field(default=0.0, ge=0.0, le=1.0)
    traffic_routing: Literal["ALL_AT_ONCE", "CANARY"] = "ALL_AT_ONCE"
    canary_percent: int = Field(default=50, ge=1, le=99)
    # Blue/green: how long new traffic is watched (alarms) before the old fleet goes away.
    bake_seconds: int = Field(default=300, ge=0, le=3600)
    termination_wait_seconds: int = Field(default=120, ge=0, le=3600)
    max_deployment_seconds: int = Field(default=3600, ge=600, le=28800)
    rollback_alarm_names: list[str] = Field(default_factory=list)

    @field_validator("rollback_alarm_names", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("endpoint_name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not SAGEMAKER_NAME_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a valid SageMaker endpoint name")
        return value


class ReconcileSettings(DeploySettings):
    # How far back to look for jobs whose end event was lost (import/training list filters).
    reconcile_lookback_hours: int = Field(default=72, ge=1, le=24 * 30)
    # A slot that says `running` for this long without a SageMaker job is re-created.
    running_grace_seconds: int = Field(default=600, ge=0)
