"""Builds the domain's dependencies from the real clients (one place, so tests can swap clients)."""

from __future__ import annotations

from common import aws_clients, notify
from common.pipeline_state import PipelineState
from start_training.settings import training_settings
from start_training.training import TrainingDeps


def training_deps() -> TrainingDeps:
    settings = training_settings()
    return TrainingDeps(
        settings=settings,
        sagemaker=aws_clients.client("sagemaker"),
        omics=aws_clients.client("omics"),
        state=PipelineState(aws_clients.client("dynamodb"), settings.state_table),
        alert=lambda subject, details: notify.send_alert(subject, details, settings.alert_topic_arn),
    )
