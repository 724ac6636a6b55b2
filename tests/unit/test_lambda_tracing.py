"""Tracing: the X-Ray SDK is imported by a handler only where tracing is on (in Lambda, with the
template's `Tracing: Active`), never where it is off: it is most of a cold import otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hyenaflow.local.template import load_template

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
HANDLERS = ["ingest_fasta", "poll_genbank", "start_training", "deploy_model", "reconcile"]
TEMPLATE_ENVIRONMENT = {  # what template.yaml gives the functions (values are placeholders)
    "POWERTOOLS_SERVICE_NAME": "hyenaflow",
    "POWERTOOLS_METRICS_NAMESPACE": "hyenaflow",
    "DATA_BUCKET": "data-bucket",
    "STATE_TABLE": "state-table",
    "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
    "SEQUENCE_STORE_ID": "1234567890",
    "OMICS_IMPORT_ROLE_ARN": "arn:aws:iam::123456789012:role/import",
    "GENBANK_QUERY": "Caudoviricetes[Organism]",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sagemaker",
    "MODEL_PACKAGE_GROUP": "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/hyenaflow-models",
    "TRAINING_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2.13-cu133-amzn2023-sagemaker",
    "TRAINING_SOURCE_URI": "s3://data-bucket/code/training/sourcedir.tar.gz",
    "INFERENCE_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu-py312",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
PROBE = """
import json, sys
import {handler}.handler as handler
from pipeline import observability
print(json.dumps({{
    "xray": "aws_xray_sdk" in sys.modules,
    "tracer": type(observability.tracer).__name__,
    "provider": type(getattr(observability.tracer, "provider", None)).__name__,
}}))
"""


def imported_in_lambda(handler: str, **environment: str) -> dict:
    """Import a handler in a fresh interpreter with what Lambda and the template set."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))},
        **TEMPLATE_ENVIRONMENT,
        "LAMBDA_TASK_ROOT": str(FUNCTIONS),
        "AWS_LAMBDA_FUNCTION_NAME": handler,
        "PYTHONPATH": str(FUNCTIONS),
        **environment,
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(handler=handler)],
        cwd=FUNCTIONS,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("handler", HANDLERS)
def test_with_tracing_disabled_a_handler_never_imports_the_xray_sdk(handler):
    imported = imported_in_lambda(handler, POWERTOOLS_TRACE_DISABLED="true")
    assert imported == {"xray": False, "tracer": "NoneType", "provider": "NoneType"}


@pytest.mark.parametrize("handler", ["ingest_fasta", "start_training"])
def test_with_tracing_on_as_deployed_the_handler_traces_through_the_xray_sdk(handler):
    imported = imported_in_lambda(handler)
    assert imported == {"xray": True, "tracer": "Tracer", "provider": "AsyncAWSXRayRecorder"}


def tracing_enabled_in(environments: list[dict[str, str]]) -> list[bool]:
    """`pipeline.observability.tracing_enabled` for each environment (imported in a fresh interpreter:
    importing it here would make the handlers' Logger and Metrics before their tests set them up)."""
    probe = (
        "import json, sys; from pipeline.observability import tracing_enabled; "
        "print(json.dumps([tracing_enabled(e) for e in json.loads(sys.argv[1])]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(environments)],
        cwd=FUNCTIONS,
        env={**os.environ, "PYTHONPATH": str(FUNCTIONS)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_the_template_deploys_with_tracing_on():
    globals_ = load_template(REPO / "template.yaml")["Globals"]["Function"]
    assert globals_["Tracing"] == "Active"
    assert "POWERTOOLS_TRACE_DISABLED" not in globals_["Environment"]["Variables"]
    assert tracing_enabled_in([{"LAMBDA_TASK_ROOT": "/var/task"}]) == [True]


def test_tracing_is_off_where_powertools_would_not_trace():
    environments = [
        {},  # not in Lambda: tests, the local stack, benchmarks
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"},  # sam local invoke
    ]
    assert tracing_enabled_in(environments) == [False, False, False, False]
