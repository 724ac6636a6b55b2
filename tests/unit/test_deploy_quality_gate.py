"""deploy_model's decisions: the quality gate, what the registry records, the blue/green configuration."""

from __future__ import annotations

import math

import pytest

from hyenaflow.local.sagemaker.model_packages import validate_customer_metadata
from pipeline.training.deployment import deployment_config
from pipeline.training.model_registry import DataLineage, metadata_value, package_metadata
from pipeline.training.quality_gate import GateFigures, quality_gate
from pipeline.training.settings import DeploySettings

ENV = {
    "STATE_TABLE": "state",
    "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
    "DATA_BUCKET": "data-bucket",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm",
    "INFERENCE_IMAGE_URI": "image:1",
    "MODEL_PACKAGE_GROUP": "hyenaflow-models",
    # deploy_model starts the coalesced follow-up job too: its settings extend the training ones.
    "SEQUENCE_STORE_ID": "1234567890",
    "TRAINING_IMAGE_URI": "image:2",
    "TRAINING_SOURCE_URI": "s3://data-bucket/code/training/sourcedir.tar.gz",
}
SERVING = "s3://data-bucket/models/hyenaflow-1/output/model.tar.gz"
OTHER = "s3://data-bucket/models/hyenaflow-0/output/model.tar.gz"


def _settings(**overrides: str) -> DeploySettings:
    from pipeline.settings import load_settings

    return load_settings(DeploySettings, {**ENV, **overrides})


def _gate(
    figures: GateFigures,
    serving: str | None = SERVING,
    started_from: str | None = SERVING,
    margin: float = 0.0,
    tolerance: float = 0.02,
):
    return quality_gate(
        figures,
        serving_model_data_url=serving,
        warm_start_model_data_url=started_from,
        margin=margin,
        forgetting_tolerance=tolerance,
    )


@pytest.mark.parametrize(
    ("candidate", "baseline", "margin", "accepted", "check"),
    [
        (3.4, 3.5, 0.0, True, "beats-baseline"),
        (3.5, 3.5, 0.0, True, "beats-baseline"),  # "no worse" includes equal
        (3.51, 3.5, 0.0, False, "regressed"),
        (3.6, 3.5, 0.05, True, "beats-baseline"),  # within a 5 % margin
        (3.7, 3.5, 0.05, False, "regressed"),
        (None, 3.5, 0.5, False, "no-metric"),  # no metric: never deploy blind
        (math.nan, 3.5, 0.0, False, "no-metric"),
        (math.inf, 3.5, 0.0, False, "no-metric"),
        (3.4, math.nan, 0.0, False, "regressed"),  # a baseline that is no number proves nothing
    ],
)
def test_warm_start_is_compared_with_its_own_baseline(
    candidate: float | None, baseline: float | None, margin: float, accepted: bool, check: str
) -> None:
    decision = _gate(GateFigures(candidate=candidate, baseline=baseline), margin=margin)
    assert (decision.accepted, decision.check) == (accepted, check)
    assert decision.approval_status == ("Approved" if accepted else "Rejected")
    assert decision.reason


@pytest.mark.parametrize(
    ("seen", "tolerance", "accepted"),
    [
        ((3.5, 3.45), 0.02, True),  # better on seen data too
        ((3.5, 3.57), 0.02, True),  # +2 %: within the tolerance
        ((3.5, 3.58), 0.02, False),  # +2.3 %: forgot
        ((3.5, 3.58), 0.05, True),
        ((3.5, math.nan), 0.02, False),
    ],
)
def test_forgetting_the_data_the_serving_model_knew_is_refused_though_better_overall(
    seen: tuple[float, float], tolerance: float, accepted: bool
) -> None:
    figures = GateFigures(candidate=3.3, baseline=3.6, seen_baseline=seen[0], seen_candidate=seen[1])
    decision = _gate(figures, tolerance=tolerance)
    assert decision.accepted is accepted
    assert decision.check == ("beats-baseline" if accepted else "forgot-seen-data")


@pytest.mark.parametrize(
    ("candidate", "accepted", "check"),
    [(3.78, True, "first-model"), (4.0, False, "not-better-than-uniform"), (math.nan, False, "no-metric")],
)
def test_first_model_must_beat_a_model_that_learnt_nothing(
    candidate: float, accepted: bool, check: str
) -> None:
    decision = _gate(GateFigures(candidate=candidate), serving=None, started_from=None)
    assert (decision.accepted, decision.check) == (accepted, check)


def test_a_job_not_measured_against_the_serving_model_is_refused() -> None:
    cold = _gate(GateFigures(candidate=3.0), started_from=None)
    from_another_model = _gate(GateFigures(candidate=3.0, baseline=3.5), started_from=OTHER)

    assert (cold.accepted, cold.check) == (False, "no-baseline")
    assert (from_another_model.accepted, from_another_model.check) == (False, "other-baseline")
    assert OTHER in from_another_model.reason and SERVING in from_another_model.reason


def test_figures_are_the_best_metrics_not_the_last_evaluation() -> None:
    job = {
        "FinalMetricDataList": [
            {"MetricName": "eval:perplexity", "Value": 3.9},  # the last evaluation: not the kept weights
            {"MetricName": "best:eval_perplexity", "Value": 3.25},
            {"MetricName": "best:baseline_eval_perplexity", "Value": 3.5},
            {"MetricName": "best:seen_eval_perplexity", "Value": 3.4},
            {"MetricName": "best:seen_baseline_eval_perplexity", "Value": 3.45},
            {"MetricName": "best:step", "Value": 100.0},
        ]
    }
    figures = GateFigures.from_training_job(job)
    assert (figures.candidate, figures.baseline, figures.seen_candidate, figures.seen_baseline) == (
        3.25,
        3.5,
        3.4,
        3.45,
    )
    assert figures.best_step == 100 and figures.new_candidate is None
    assert GateFigures.from_training_job({}).candidate is None


def test_registry_metadata_fits_the_customer_metadata_limits_whatever_the_job() -> None:
    long_reason_decision = _gate(
        GateFigures(candidate=3.3, baseline=3.6, seen_baseline=3.5, seen_candidate=3.9),
        started_from="s3://" + "b" * 300 + "/model.tar.gz",
    )
    lineage = DataLineage(
        training_data="s3://ap-alias/123456789012/sequenceStore/1234567890/",
        read_set_ids=[str(9_000_000_000 + i) for i in range(500)],
        warm_start_from="s3://" + "b" * 300 + "/model.tar.gz",
        trigger="4000000001",
    )

    metadata = package_metadata("hyenaflow-4000000001", long_reason_decision, lineage)

    validate_customer_metadata(metadata)  # the emulation's check of botocore's constraints
    assert metadata["ReadSetCount"] == "500" and metadata["ReadSets"].endswith("+488 more")
    assert metadata["GateDecision"] == "Rejected"
    assert metadata_value("a, b; (c) > d's 2%") == "a  b   c    d s 2"


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


def test_gate_defaults_compare_like_with_like() -> None:
    settings = _settings()
    assert (settings.quality_gate_margin, settings.forgetting_tolerance) == (0.0, 0.02)


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"ENDPOINT_NAME": "Bad_Name"}, "ENDPOINT_NAME"),
        ({"QUALITY_GATE_MARGIN": "-0.1"}, "QUALITY_GATE_MARGIN"),
        ({"FORGETTING_TOLERANCE": "1.5"}, "FORGETTING_TOLERANCE"),
        ({"TRAFFIC_ROUTING": "LINEARISH"}, "TRAFFIC_ROUTING"),
        ({"MODEL_PACKAGE_GROUP": ""}, "MODEL_PACKAGE_GROUP"),
    ],
)
def test_bad_deploy_settings_are_named(overrides: dict, complaint: str) -> None:
    with pytest.raises(RuntimeError, match=complaint):
        _settings(**overrides)
