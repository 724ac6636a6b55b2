"""The Lambda functions on their runtime's Python, python3.12 (template.yaml).

`make test-py312` runs this with functions/requirements.txt installed in .venv-py312 (the main
suite runs it on 3.11 too). Every handler module imports as Lambda imports it, with the template's
settings, with and without the X-Ray SDK (TraceAwsCalls), and no heavy ML library comes with it.
What it cannot show here: the arm64 wheels `make build` packs (tests/unit/test_lambda_layout.py
checks their Python tag).
"""

from __future__ import annotations

import pytest

from tests.support.lambda_import import HANDLERS, imported_in_lambda

PROBE = """
import json, sys
import {handler}.handler as handler
heavy = sorted(m for m in ("torch", "numpy", "transformers", "sagemaker", "Bio") if m in sys.modules)
print(json.dumps({{"handler": callable(handler.lambda_handler), "heavy": heavy, "xray": "aws_xray_sdk" in sys.modules}}))
"""


@pytest.mark.parametrize("trace_aws_calls", [False, True])
@pytest.mark.parametrize("handler", HANDLERS)
def test_every_handler_imports_on_this_python(handler: str, trace_aws_calls: bool) -> None:
    disabled = "false" if trace_aws_calls else "true"
    imported = imported_in_lambda(handler, PROBE, POWERTOOLS_TRACE_DISABLED=disabled)
    # (which Python: tests/py312/test_container_python.py checks the interpreter this runs on)
    assert imported == {"handler": True, "heavy": [], "xray": trace_aws_calls}
