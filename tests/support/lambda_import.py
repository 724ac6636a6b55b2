"""Import a Lambda handler in a fresh interpreter as Lambda would: functions/ on the path, the
runtime's variables (LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME) and the template's environment
(placeholder values), and run a probe there that prints one JSON line about what the import did.
A fresh interpreter because the handlers make their Logger, Metrics and settings at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    "TRAINING_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2.13-cu133-amzn2023-sagemaker",
    "TRAINING_SOURCE_URI": "s3://data-bucket/code/training/sourcedir.tar.gz",
    "INFERENCE_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu-py312",
    "MODEL_PACKAGE_GROUP": "hyenaflow",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def imported_in_lambda(handler: str, probe: str, **environment: str) -> dict:
    """The JSON `probe` prints after `import <handler>.handler` (the probe does the import)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))},
        **TEMPLATE_ENVIRONMENT,
        "LAMBDA_TASK_ROOT": str(FUNCTIONS),
        "AWS_LAMBDA_FUNCTION_NAME": handler,
        "PYTHONPATH": str(FUNCTIONS),
        **environment,
    }
    result = subprocess.run(
        [sys.executable, "-c", probe.format(handler=handler)],
        cwd=FUNCTIONS,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"importing {handler}.handler failed:\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])
