"""start_training settings (environment variables set in template.yaml), read once per container."""

from __future__ import annotations

import json
from functools import cache
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from common.settings import load_settings


class TrainingSettings(BaseModel):
    state_table: str
    alert_topic_arn: str
    data_bucket: str
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
    training_distributed: bool = False
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

    @field_validator("training_extra_hyperparameters", mode="before")
    @classmethod
    def _parse_json(cls, value: object) -> object:
        if isinstance(value, str):
            parsed = json.loads(value or "{}")
            return {str(k): str(v) for k, v in parsed.items()}
        return value

    @model_validator(mode="after")
    def _spot_wait_covers_runtime(self) -> TrainingSettings:
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


@cache
def training_settings() -> TrainingSettings:
    return load_settings(TrainingSettings)
