"""Cold import time of each Lambda handler (target: < 300 ms) and proof that none pulls in torch/numpy.

Each sample is a fresh interpreter (as a Lambda cold start is) importing one handler module with
`functions/` on sys.path, timed inside the child with perf_counter. Prints the median and the
heaviest imports (from `-X importtime`).

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
t = time.perf_counter()
import {module}
elapsed = time.perf_counter() - t
heavy = sorted(m for m in ("torch", "numpy", "transformers", "sagemaker") if m in sys.modules)
print(json.dumps({{"seconds": elapsed, "heavy": heavy}}))
"""
# What the template sets; handlers read some of it at import (Powertools, idempotency table).
ENV = {
    "STATE_TABLE": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "hyenaflow",
    "POWERTOOLS_METRICS_NAMESPACE": "hyenaflow",
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
        heavy = sorted({m for r in runs for m in r["heavy"]})
        print(
            f"{module:28s} median {statistics.median(times):6.0f} ms  min {times[0]:6.0f} ms  "
            f"heavy modules: {', '.join(heavy) or 'none'}"
        )


if __name__ == "__main__":
    main()
