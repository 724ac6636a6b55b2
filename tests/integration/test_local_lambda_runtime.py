"""The local Lambda runtime: template functions run in-process with Lambda's async semantics.

A small template (written to disk per test) declares one probe function with an EventBridge
rule, a schedule, Globals environment with Refs, and an on-failure destination; the probe
handler is a real file under functions/ that records what it received.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from hyenaflow.local.pipeline import LocalPipeline, PipelineConfig
from tests.support import polling

PROBE_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: local-test
Globals:
  Function:
    Runtime: python3.12
    CodeUri: functions/
    Timeout: 30
    Environment:
      Variables:
        STATE_TABLE: !Ref StateTable
        ALERT_TOPIC_ARN: !Ref AlertTopic
Resources:
  StateTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
  AlertTopic:
    Type: AWS::SNS::Topic
  ProbeDeadLetterQueue:
    Type: AWS::SQS::Queue
  ProbeFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: probe.handler.lambda_handler
      MemorySize: 256
      Environment:
        Variables:
          PROBE_OUT: "@PROBE_OUT@"
          STAGE_NAME: !Sub "${Stage}-${AWS::Region}"
      EventInvokeConfig:
        MaximumRetryAttempts: 2
        DestinationConfig:
          OnFailure:
            Type: SQS
            Destination: !GetAtt ProbeDeadLetterQueue.Arn
      Events:
        Probe:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [hyenaflow.test]
              detail-type: [Probe]
        Nightly:
          Type: Schedule
          Properties:
            Schedule: rate(1 day)
  OtherProbeFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: probe.handler.lambda_handler
      Environment:
        Variables:
          PROBE_OUT: "@PROBE_OUT@"
          STAGE_NAME: other
      Events:
        Probe:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [hyenaflow.test]
              detail-type: [OtherProbe]
"""

PROBE_HANDLER = """\
import importlib
import json
import sys
import os

# Read once per container, as the project's settings objects are.
STAGE_AT_IMPORT = os.environ["STAGE_NAME"]


def lambda_handler(event, context):
    record = {
        "event": event,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "state_table": os.environ["STATE_TABLE"],
        "alert_topic_arn": os.environ["ALERT_TOPIC_ARN"],
        "stage_name": os.environ["STAGE_NAME"],
        "stage_at_import": STAGE_AT_IMPORT,
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
    }
    with open(os.environ["PROBE_OUT"], "a") as out:
        out.write(json.dumps(record) + "\\n")
    print("probe handled", event.get("id"))
    if event.get("detail", {}).get("fail"):
        raise RuntimeError("probe asked to fail")
    return {"ok": True}
"""


def _write_probe_project(root: Path) -> Path:
    """template.yaml + functions/probe/handler.py under `root`; returns the probe's output file."""
    (root / "functions" / "probe").mkdir(parents=True)
    (root / "functions" / "probe" / "__init__.py").write_text("")
    (root / "functions" / "probe" / "handler.py").write_text(PROBE_HANDLER)
    probe_out = root / "probe.jsonl"
    (root / "template.yaml").write_text(PROBE_TEMPLATE.replace("@PROBE_OUT@", str(probe_out)))
    return probe_out


@pytest.fixture
def probe_pipeline(tmp_path: Path):
    probe_out = _write_probe_project(tmp_path)
    config = PipelineConfig(
        workdir=tmp_path / "local",
        template_path=tmp_path / "template.yaml",
        upload_training_code=False,
        retry_delays_s=(0.05, 0.05),
    )
    with LocalPipeline(config) as pipeline:
        yield pipeline, probe_out


def _records(probe_out: Path) -> list[dict[str, Any]]:
    if not probe_out.exists():
        return []
    return [json.loads(line) for line in probe_out.read_text().splitlines()]


def _wait_for(condition, timeout_s: float = 20.0, what: str = "condition") -> Any:
    return polling.wait_for(condition, what, timeout_s, interval_s=0.05)


def _put_probe(pipeline: LocalPipeline, detail: dict[str, Any]) -> None:
    pipeline.client("events").put_events(
        Entries=[{"Source": "hyenaflow.test", "DetailType": "Probe", "Detail": json.dumps(detail)}]
    )


def test_handler_gets_template_environment_with_refs_resolved_and_a_lambda_context(probe_pipeline) -> None:
    pipeline, probe_out = probe_pipeline
    _put_probe(pipeline, {"n": 1})

    (record,) = _wait_for(lambda: _records(probe_out), what="probe invocation")

    assert record["event"]["detail"] == {"n": 1}
    assert record["event"]["account"] == "123456789012"
    assert record["state_table"] == pipeline.state_table
    assert record["alert_topic_arn"].startswith("arn:aws:sns:us-east-1:123456789012:")
    assert record["stage_name"] == "local-test-us-east-1"
    assert record["endpoint"] == pipeline.endpoint_url
    assert record["function_name"] == "hyenaflow-local-ProbeFunction"
    assert record["memory"] == 256
    assert 0 < record["remaining_ms"] <= 30_000
    log = pipeline.runtime.log_path(pipeline.function("ProbeFunction")).read_text()
    assert "probe handled" in log and "REPORT RequestId" in log


def test_failing_event_is_retried_twice_then_sent_to_on_failure_destination(probe_pipeline) -> None:
    pipeline, probe_out = probe_pipeline
    _put_probe(pipeline, {"fail": True})

    sqs = pipeline.client("sqs")
    dlq_url = pipeline.resources["ProbeDeadLetterQueue"].ref
    messages = _wait_for(
        lambda: sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0).get("Messages"),
        what="on-failure record in the DLQ",
    )

    assert len(_records(probe_out)) == 3  # first attempt + MaximumRetryAttempts 2
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"]["detail"] == {"fail": True}
    assert record["responsePayload"]["errorMessage"] == "probe asked to fail"


def test_fire_schedule_invokes_the_function_with_a_scheduled_event(probe_pipeline) -> None:
    pipeline, probe_out = probe_pipeline

    pipeline.fire_schedule("ProbeFunction")

    (record,) = _wait_for(lambda: _records(probe_out), what="scheduled invocation")
    assert record["event"]["detail-type"] == "Scheduled Event"
    assert record["event"]["source"] == "aws.events"


def test_event_outside_the_rule_pattern_invokes_nothing(probe_pipeline) -> None:
    pipeline, probe_out = probe_pipeline
    events = pipeline.client("events")
    events.put_events(
        Entries=[{"Source": "hyenaflow.other", "DetailType": "Probe", "Detail": json.dumps({"n": 2})}]
    )
    _put_probe(pipeline, {"n": 3})  # a matching event afterwards, to know the first one had its chance

    records = _wait_for(lambda: _records(probe_out), what="the matching event")
    assert [r["event"]["detail"] for r in records] == [{"n": 3}]


def test_functions_sharing_code_keep_their_own_module_state(probe_pipeline) -> None:
    # Given two functions whose handler module caches an environment variable at import
    pipeline, probe_out = probe_pipeline
    _put_probe(pipeline, {"n": 1})
    _wait_for(lambda: len(_records(probe_out)) == 1, what="first function")

    # When the second function runs the same code after the first one imported it
    pipeline.client("events").put_events(
        Entries=[{"Source": "hyenaflow.test", "DetailType": "OtherProbe", "Detail": json.dumps({"n": 2})}]
    )
    _wait_for(lambda: len(_records(probe_out)) == 2, what="second function")
    _put_probe(pipeline, {"n": 3})
    records = _wait_for(
        lambda: len(_records(probe_out)) == 3 and _records(probe_out), what="first function again"
    )

    # Then each sees its own import-time value, as in separate Lambda containers
    assert [(r["function_name"], r["stage_at_import"]) for r in records] == [
        ("hyenaflow-local-ProbeFunction", "local-test-us-east-1"),
        ("hyenaflow-local-OtherProbeFunction", "other"),
        ("hyenaflow-local-ProbeFunction", "local-test-us-east-1"),
    ]


def test_shortened_schedule_clock_fires_the_template_schedule_repeatedly(tmp_path: Path) -> None:
    probe_out = _write_probe_project(tmp_path)
    config = PipelineConfig(
        workdir=tmp_path / "local",
        template_path=tmp_path / "template.yaml",
        upload_training_code=False,
        schedule_every_s={"ProbeFunction": 0.3},
    )
    with LocalPipeline(config):
        records = _wait_for(lambda: len(_records(probe_out)) >= 2 and _records(probe_out), what="two ticks")

    assert {r["event"]["detail-type"] for r in records} == {"Scheduled Event"}
    assert {r["function_name"] for r in records} == {"hyenaflow-local-ProbeFunction"}


def test_modules_the_process_imported_itself_stay_untouched(tmp_path: Path, monkeypatch) -> None:
    # Given this process imported the handler module itself (as unit tests import functions/)
    probe_out = _write_probe_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "functions"))
    monkeypatch.setenv("STAGE_NAME", "imported-by-the-test")
    own = importlib.import_module("probe.handler")
    try:
        config = PipelineConfig(
            workdir=tmp_path / "local", template_path=tmp_path / "template.yaml", upload_training_code=False
        )
        with LocalPipeline(config) as pipeline:
            _put_probe(pipeline, {"n": 1})
            # Until the invocation has ended, its own modules are in sys.modules: wait for its end,
            # not for the record the handler writes while it runs.
            _wait_for(lambda: pipeline.runtime.invocations, what="probe invocation")
            (record,) = _records(probe_out)
            # the function got its own copy (cold start with its own environment) ...
            assert record["stage_at_import"] == "local-test-us-east-1"
            # ... while the process kept its module once the invocation ended
            assert sys.modules["probe.handler"] is own
        assert sys.modules["probe.handler"] is own and own.STAGE_AT_IMPORT == "imported-by-the-test"
    finally:
        for name in ("probe.handler", "probe"):
            sys.modules.pop(name, None)


def test_queued_event_outside_the_template_pattern_is_dropped_not_invoked(probe_pipeline) -> None:
    # Given an event in the function's invoke queue that its template pattern does not match
    # (what a matcher more lenient than EventBridge's would let through)
    pipeline, probe_out = probe_pipeline
    stray = {
        "version": "0",
        "id": "stray",
        "detail-type": "Probe",
        "source": "hyenaflow.other",
        "detail": {"n": 1},
    }
    pipeline.client("sqs").send_message(
        QueueUrl=pipeline.router.queue_urls["ProbeFunction"], MessageBody=json.dumps(stray)
    )
    _put_probe(pipeline, {"n": 2})

    # Then only the matching event runs the handler; the stray one is recorded as dropped
    records = _wait_for(lambda: _records(probe_out), what="the matching event")
    _wait_for(lambda: pipeline.runtime.dropped, what="the stray event to be dropped")
    assert [r["event"]["detail"] for r in records] == [{"n": 2}]
    assert [event["id"] for _, event in pipeline.runtime.dropped] == ["stray"]


def test_reserved_concurrency_is_read_from_the_template_and_zero_throttles_the_function(
    tmp_path: Path,
) -> None:
    # Given a template in which one function reserves 0 (Lambda throttles every invocation of it)
    probe_out = _write_probe_project(tmp_path)
    template = tmp_path / "template.yaml"
    text = template.read_text()
    marker = "      Handler: probe.handler.lambda_handler\n      Environment:\n        Variables:\n"
    assert text.count(marker) == 1  # OtherProbeFunction's properties
    template.write_text(
        text.replace(
            marker,
            marker.replace("      Environment:", "      ReservedConcurrentExecutions: 0\n      Environment:"),
        )
    )
    config = PipelineConfig(workdir=tmp_path / "local", template_path=template, upload_training_code=False)
    with LocalPipeline(config) as pipeline:
        # When both functions get an event
        events = pipeline.client("events")
        events.put_events(
            Entries=[{"Source": "hyenaflow.test", "DetailType": "OtherProbe", "Detail": json.dumps({"n": 1})}]
        )
        _put_probe(pipeline, {"n": 2})

        _wait_for(lambda: _records(probe_out), what="the unthrottled function")
        _put_probe(pipeline, {"n": 3})  # by its turn the delivery loop has passed every queue once more
        records = _wait_for(lambda: len(_records(probe_out)) == 2 and _records(probe_out), what="again")

        # Then only the unthrottled one ran; the throttled one's event waits in its queue
        assert [r["event"]["detail"] for r in records] == [{"n": 2}, {"n": 3}]
        assert pipeline.function("OtherProbeFunction").reserved_concurrency == 0
        assert pipeline.function("ProbeFunction").reserved_concurrency is None
        queue = pipeline.router.queue_urls["OtherProbeFunction"]
        attributes = pipeline.client("sqs").get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "1"
