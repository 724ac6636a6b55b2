"""Tracing: the X-Ray SDK is imported by a handler only where SDK tracing is on (in Lambda, with
the stack parameter TraceAwsCalls=true), never where it is off: it is ~30 ms of a cold import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hyenaflow.local.template import IntrinsicResolver, load_template
from tests.support.lambda_import import FUNCTIONS, HANDLERS, REPO
from tests.support.lambda_import import imported_in_lambda as _imported_in_lambda

PROBE = """
import json, sys
import {handler}.handler as handler
from pipeline import observability
print(json.dumps({{
    "xray": "aws_xray_sdk" in sys.modules,
    "tracer": type(observability.tracer).__name__,
    "provider": type(getattr(observability.tracer, "provider", None)).__name__,
    "patched": sorted(m for m in sys.modules if m.startswith("aws_xray_sdk.ext.") and m.endswith(".patch")),
}}))
"""


def imported_in_lambda(handler: str, **environment: str) -> dict:
    """Import a handler in a fresh interpreter with what Lambda and the template set."""
    return _imported_in_lambda(handler, PROBE, **environment)


@pytest.mark.parametrize("handler", HANDLERS)
def test_with_tracing_disabled_a_handler_never_imports_the_xray_sdk(handler):
    imported = imported_in_lambda(handler, POWERTOOLS_TRACE_DISABLED="true")
    assert imported == {"xray": False, "tracer": "NoneType", "provider": "NoneType", "patched": []}


@pytest.mark.parametrize("handler", ["ingest_fasta", "start_training"])
def test_with_trace_aws_calls_the_handler_traces_through_the_xray_sdk(handler):
    imported = imported_in_lambda(handler, POWERTOOLS_TRACE_DISABLED="false")
    # Patched: botocore (AWS calls) and http.client (NCBI), not every library the SDK knows.
    assert imported == {
        "xray": True,
        "tracer": "Tracer",
        "provider": "AsyncAWSXRayRecorder",
        "patched": ["aws_xray_sdk.ext.botocore.patch", "aws_xray_sdk.ext.httplib.patch"],
    }


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


def _deployed_tracing(**parameters: str) -> tuple[str, str]:
    """The functions' `Tracing` and POWERTOOLS_TRACE_DISABLED as CloudFormation would resolve
    them with the template's defaults and `parameters`."""
    template = load_template(REPO / "template.yaml")
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()} | parameters
    resolver = IntrinsicResolver(template, {}, values, region="us-east-1", stack_name="hyenaflow")
    globals_ = template["Globals"]["Function"]
    return globals_["Tracing"], resolver.resolve(
        globals_["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"]
    )


def test_the_template_traces_invocations_and_loads_the_xray_sdk_only_with_trace_aws_calls():
    # Lambda records every invocation (Tracing: Active); the X-Ray SDK, in maintenance mode and
    # unsupported from 2027-02-25, only where TraceAwsCalls asks for subsegments.
    assert _deployed_tracing() == ("Active", "true")
    assert _deployed_tracing(TraceAwsCalls="true") == ("Active", "false")
    in_lambda = {"LAMBDA_TASK_ROOT": "/var/task"}
    assert tracing_enabled_in(
        [
            in_lambda | {"POWERTOOLS_TRACE_DISABLED": "true"},
            in_lambda | {"POWERTOOLS_TRACE_DISABLED": "false"},
        ]
    ) == [False, True]


def test_tracing_is_off_where_powertools_would_not_trace():
    environments = [
        {},  # not in Lambda: tests, the local stack, benchmarks
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"},  # sam local invoke
    ]
    assert tracing_enabled_in(environments) == [False, False, False, False]
