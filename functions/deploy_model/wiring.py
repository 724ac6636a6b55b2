"""Builds deploy_model's dependencies from the real clients."""

from __future__ import annotations

from common import aws_clients, notify
from common.pipeline_state import PipelineState
from deploy_model.deployment import DeployDeps
from deploy_model.settings import deploy_settings
from start_training.wiring import training_deps


def deploy_deps() -> DeployDeps:
    settings = deploy_settings()
    return DeployDeps(
        settings=settings,
        sagemaker=aws_clients.client("sagemaker"),
        state=PipelineState(aws_clients.client("dynamodb"), settings.state_table),
        alert=lambda subject, details: notify.send_alert(subject, details, settings.alert_topic_arn),
        training=training_deps(),
    )
