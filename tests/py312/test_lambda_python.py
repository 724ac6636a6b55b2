"""The Lambda functions on their runtime's Python, python3.12 (template.yaml).

`make test-py312` runs this with functions/requirements.txt installed in .venv-py312 (the main
suite runs it on 3.11 too). Every handler module imports with the settings the template gives it,
and no heavy ML library comes with it. What it cannot show here: the arm64 wheels `make build`
packs (tests/unit/test_lambda_layout.py checks their Python tag).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from bench_lambda_cold_import import ENV, HANDLERS  # noqa: E402  (the template's settings, read at import)

PROBE = """
import json, sys
import {module}
heavy = sorted(m for m in ("torch", "numpy", "transformers", "sagemaker", "Bio") if m in sys.modules)
print(json.dumps({{"handler": callable({module}.lambda_handler), "heavy": heavy}}))
"""


@pytest.mark.parametrize("module", HANDLERS)
def test_every_handler_imports_on_this_python(module: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    env |= ENV | {"PYTHONPATH": str(REPO / "functions"), "PYTHONDONTWRITEBYTECODE": "1"}
    env |= {"POWERTOOLS_TRACE_DISABLED": "true"}  # no X-Ray daemon here
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO / "functions",
    )
    assert result.returncode == 0, f"{module} on Python {sys.version.split()[0]}:\n{result.stderr}"
    assert json.loads(result.stdout.splitlines()[-1]) == {"handler": True, "heavy": []}
