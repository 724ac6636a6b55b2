"""Cold import time of each Lambda handler (target: < 300 ms) and proof that none pulls in torch/numpy.

Each sample is a fresh interpreter (as a Lambda cold start is) importing one handler module with
`functions/` on sys.path, timed inside the child (wall clock and process CPU time; on a loaded machine the CPU time is the
better estimate of a quiet Lambda's cold import).

    python bench/bench_lambda_cold_import.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HANDLERS = [
    "ingest_fasta.handler",
    "poll_genbank.handler",
    "start_training.handler",
    "deploy_model.handler",
    "reconcile.handler",
]
CHILD = """
import json, sys, time
t, c = time.perf_counter(), time.process_time()
import {module}
elapsed, cpu = time.perf_counter() - t, time.process_time() - c
heavy = sorted(m for m in ("torch", "numpy", "transformers", "sagemaker") if m in sys.modules)
print(json.dumps({{"seconds": elapsed, "cpu_seconds": cpu, "heavy": heavy}}))
"""
# What the template sets; handlers read their settings at import (Powertools, idempotency table).
ENV = {
    "STATE_TABLE": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "hyenaflow",
    "POWERTOOLS_METRICS_NAMESPACE": "hyenaflow",
    "DATA_BUCKET": "bench-bucket",
    "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench",
    "SEQUENCE_STORE_ID": "1234567890",
    "OMICS_IMPORT_ROLE_ARN": "arn:aws:iam::123456789012:role/import",
    "GENBANK_QUERY": "Caudoviricetes[Organism]",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sagemaker",
    "TRAINING_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311",
    "TRAINING_SOURCE_URI": "s3://bench-bucket/code/training/sourcedir.tar.gz",
    "INFERENCE_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311",
}


def sample(module: str) -> dict:
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO / "functions")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(module=module)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for module in HANDLERS:
        if not (REPO / "functions" / (module.replace(".", "/") + ".py")).exists():
            print(f"{module:28s} missing")
            continue
        runs = [sample(module) for _ in range(args.repeat)]
        times = sorted(r["seconds"] * 1000 for r in runs)
        cpu = sorted(r["cpu_seconds"] * 1000 for r in runs)
        heavy = sorted({m for r in runs for m in r["heavy"]})
        print(
            f"{module:28s} wall median {statistics.median(times):6.0f} ms  min {times[0]:6.0f} ms  "
            f"CPU median {statistics.median(cpu):6.0f} ms  "
            f"heavy modules: {', '.join(heavy) or 'none'}"
        )


if __name__ == "__main__":
    main()
