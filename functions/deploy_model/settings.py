"""deploy_model settings (environment variables set in template.yaml), read once per container."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from common.names import SAGEMAKER_NAME_PATTERN
from common.settings import load_settings


class DeploySettings(BaseModel):
    state_table: str
    alert_topic_arn: str
    sagemaker_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::")
    job_name_prefix: str = "hyenaflow"
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


@cache
def deploy_settings() -> DeploySettings:
    return load_settings(DeploySettings)
