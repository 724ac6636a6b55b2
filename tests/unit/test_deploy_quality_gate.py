"""deploy_model's decisions: the quality gate and the blue/green deployment configuration."""

from __future__ import annotations

import math

import pytest

from pipeline.training.deployment import deployment_config
from pipeline.training.quality_gate import final_metric, quality_gate
from pipeline.training.settings import DeploySettings

ENV = {
    "STATE_TABLE": "state",
    "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
    "DATA_BUCKET": "data-bucket",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm",
    "INFERENCE_IMAGE_URI": "image:1",
    # deploy_model starts the coalesced follow-up job too: its settings extend the training ones.
    "SEQUENCE_STORE_ID": "1234567890",
    "TRAINING_IMAGE_URI": "image:2",
    "TRAINING_SOURCE_URI": "s3://data-bucket/code/training/sourcedir.tar.gz",
}


def _settings(**overrides: str) -> DeploySettings:
    from pipeline.settings import load_settings

    return load_settings(DeploySettings, {**ENV, **overrides})


@pytest.mark.parametrize(
    ("candidate", "reference", "margin", "accepted"),
    [
        (3.5, None, 0.0, True),  # nothing serves yet
        (3.4, 3.5, 0.0, True),
        (3.5, 3.5, 0.0, True),  # "no worse" includes equal
        (3.6, 3.5, 0.0, False),
        (3.6, 3.5, 0.05, True),  # within a 5% margin
        (3.7, 3.5, 0.05, False),
        (None, 3.5, 0.5, False),  # no metric: never deploy blind
        (math.nan, None, 0.0, False),
        (math.inf, None, 0.0, False),
    ],
)
def test_quality_gate(
    candidate: float | None, reference: float | None, margin: float, accepted: bool
) -> None:
    decision = quality_gate(candidate, reference, margin)
    assert decision.accepted is accepted
    assert decision.reason


def test_final_metric_reads_the_last_eval_perplexity() -> None:
    job = {
        "FinalMetricDataList": [
            {"MetricName": "train:perplexity", "Value": 3.0},
            {"MetricName": "eval:perplexity", "Value": 3.25},
        ]
    }
    assert final_metric(job) == 3.25
    assert final_metric({"FinalMetricDataList": []}) is None
    assert final_metric({}) is None


def test_all_at_once_bakes_under_the_rollback_alarms() -> None:
    config = deployment_config(_settings(ROLLBACK_ALARM_NAMES="a5xx, latency", BAKE_SECONDS="600"))
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600}
    assert config["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": "a5xx"}, {"AlarmName": "latency"}]
    }
    assert 600 <= config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] <= 28800


def test_canary_shifts_a_share_of_capacity_first() -> None:
    config = deployment_config(_settings(TRAFFIC_ROUTING="CANARY", CANARY_PERCENT="25"))
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "CANARY"
    assert routing["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    assert "AutoRollbackConfiguration" not in config  # no alarms configured, none invented


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"ENDPOINT_NAME": "Bad_Name"}, "ENDPOINT_NAME"),
        ({"QUALITY_GATE_MARGIN": "-0.1"}, "QUALITY_GATE_MARGIN"),
        ({"TRAFFIC_ROUTING": "LINEARISH"}, "TRAFFIC_ROUTING"),
    ],
)
def test_bad_deploy_settings_are_named(overrides: dict, complaint: str) -> None:
    with pytest.raises(RuntimeError, match=complaint):
        _settings(**overrides)
