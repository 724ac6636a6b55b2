"""Cold import CPU time of each Lambda handler as the function package ships (target: <= 300 ms).

    python bench/bench_lambda_cold_import.py [--repeat 3]
    python bench/bench_lambda_cold_import.py --baseline /tmp/main   # also another checkout, same run

What it measures, per handler, in a fresh Python 3.12 interpreter each time (a cold start on the
functions' runtime, python3.12), inside the child (process CPU time; on a loaded machine a better
estimate of a quiet Lambda than wall time), after the standard-library modules Lambda's runtime
has already imported when it imports the handler (RUNTIME_PRELOADED):

- the package as Lambda gets it: functions/ with its symlinks resolved plus functions/
  requirements.txt installed next to it (`pip install -t`, this machine's x86_64 wheels), run
  with `python -S` (no other site-packages) and PYTHONDONTWRITEBYTECODE (Lambda's /var/task is
  read-only: Python cannot cache the bytecode it compiles);
- `sam build` output has no .pyc: "no .pyc" compiles every imported module at every cold start;
  "with .pyc" is the package after `make build`, which byte-compiles it (unchecked-hash);
- the Lambda runtime's variables (LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME; the X-Ray SDK
  behaves differently outside Lambda) and the template's; the X-Ray SDK off (the template's
  default, POWERTOOLS_TRACE_DISABLED=true) and on (stack parameter TraceAwsCalls=true).

Samples of the trees and settings are interleaved, so load changes hit them alike. The child also
reports whether torch/numpy/transformers/sagemaker/Biopython or the X-Ray SDK were imported.
"""

from __future__ import annotations

import argparse
import functools
import glob
import hashlib
import json
import os
import shutil
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HANDLERS = [
    "ingest_fasta.handler",
    "poll_genbank.handler",
    "start_training.handler",
    "deploy_model.handler",
    "reconcile.handler",
]
# What Lambda's Python runtime has imported before it imports the handler: the standard-library
# modules of awslambdaric's bootstrap.py (github.com/aws/aws-lambda-python-runtime-interface-client,
# awslambdaric/bootstrap.py: importlib, json, logging, os, sys, time, traceback). They are not part
# of the handler's cold import, so the child loads them before it starts the clocks.
RUNTIME_PRELOADED = "importlib, json, logging, os, sys, time, traceback"
CHILD = """
import {preloaded}
t, c = time.perf_counter(), time.process_time()
import {module}
elapsed, cpu = time.perf_counter() - t, time.process_time() - c
heavy = sorted(m for m in ("torch", "numpy", "transformers", "sagemaker", "Bio") if m in sys.modules)
print(json.dumps({{"seconds": elapsed, "cpu_seconds": cpu, "heavy": heavy, "xray": "aws_xray_sdk" in sys.modules}}))
"""
# What the template sets; handlers read their settings at import (Powertools, idempotency table).
ENV = {
    "STATE_TABLE": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "hyenaflow",
    "POWERTOOLS_METRICS_NAMESPACE": "hyenaflow",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "DATA_BUCKET": "bench-bucket",
    "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench",
    "SEQUENCE_STORE_ID": "1234567890",
    "OMICS_IMPORT_ROLE_ARN": "arn:aws:iam::123456789012:role/import",
    "GENBANK_QUERY": "Caudoviricetes[Organism]",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sagemaker",
    "TRAINING_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2.13-cu133-amzn2023-sagemaker",
    "TRAINING_SOURCE_URI": "s3://bench-bucket/code/training/sourcedir.tar.gz",
    "INFERENCE_IMAGE_URI": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu-py312",
    "MODEL_PACKAGE_GROUP": "hyenaflow",
}


@functools.cache
def runtime_python() -> str:
    """The functions' runtime, Python 3.12 (template.yaml), found as the Makefile finds it."""
    candidates = [os.environ.get("PYTHON312", "")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    candidates += [shutil.which("python3.12") or ""]
    for candidate in filter(None, candidates):
        version = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
        )
        if version.stdout.strip() == "True":
            return candidate
    raise SystemExit("no Python 3.12 (the functions' runtime) found; set PYTHON312=/path/to/python3.12")


def build_package(checkout: Path, workdir: Path, compiled: bool) -> Path:
    """functions/ of `checkout` assembled as `sam build` (+ `make build` when compiled) would."""
    functions = checkout / "functions"
    requirements = (functions / "requirements.txt").read_bytes()
    deps = workdir / f"deps-py312-{hashlib.sha256(requirements).hexdigest()[:12]}"
    if not deps.is_dir():
        subprocess.run(
            [runtime_python(), "-m", "pip", "install", "-q", "--no-compile", "-t", str(deps) + ".tmp"]
            + ["-r", str(functions / "requirements.txt")],
            check=True,
        )
        Path(str(deps) + ".tmp").rename(deps)
    code = hashlib.sha256(str(checkout.resolve()).encode()).hexdigest()[:12]
    package = workdir / f"package-{code}-{'pyc' if compiled else 'source'}"
    shutil.rmtree(package, ignore_errors=True)
    shutil.copytree(deps, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(functions, package, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    if compiled:
        subprocess.run(
            [runtime_python(), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
            + [str(package)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return package


def sample(package: Path, module: str, tracing: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    env |= ENV | {
        "PYTHONPATH": str(package),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(package),  # what the Lambda runtime sets; the X-Ray SDK checks it
        "AWS_LAMBDA_FUNCTION_NAME": module.split(".")[0],
    }
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    out = subprocess.run(
        [runtime_python(), "-S", "-c", CHILD.format(module=module, preloaded=RUNTIME_PRELOADED)],
        capture_output=True,
        text=True,
        env=env,
        cwd=package,
    )
    if out.returncode != 0:
        raise SystemExit(f"{module} failed to import from {package}:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout, measured the same way")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hyenaflow-bench/lambda"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    checkouts = {"this tree": REPO} | ({f"baseline {args.baseline}": args.baseline} if args.baseline else {})
    packages = {
        (tree, compiled): build_package(checkout, args.workdir, compiled)
        for tree, checkout in checkouts.items()
        for compiled in (False, True)
    }
    version = subprocess.run([runtime_python(), "-V"], capture_output=True, text=True).stdout.strip()
    print(f"{version} (the functions' runtime), {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"loaded before the clocks start, as Lambda's runtime has them: {RUNTIME_PRELOADED}")
    print(
        "| tree | handler | .pyc | X-Ray SDK (TraceAwsCalls) | CPU median ms | CPU min ms | wall median ms | X-Ray SDK imported | heavy |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for module in HANDLERS:
        runs: dict[tuple, list[dict]] = {}
        for _ in range(args.repeat):
            for (tree, compiled), package in packages.items():
                for tracing in (True, False):
                    if (package / (module.replace(".", "/") + ".py")).exists():
                        runs.setdefault((tree, compiled, tracing), []).append(
                            sample(package, module, tracing)
                        )
        for (tree, compiled, tracing), samples in sorted(
            runs.items(), key=lambda kv: (kv[0][0], kv[0][1], not kv[0][2])
        ):
            cpu = sorted(r["cpu_seconds"] * 1000 for r in samples)
            wall = sorted(r["seconds"] * 1000 for r in samples)
            xray = {r["xray"] for r in samples}
            heavy = sorted({m for r in samples for m in r["heavy"]})
            print(
                f"| {tree} | {module} | {'yes' if compiled else 'no'} | {'on' if tracing else 'off (default)'} | "
                f"{statistics.median(cpu):.0f} | {cpu[0]:.0f} | {statistics.median(wall):.0f} | "
                f"{'yes' if xray == {True} else 'no'} | {', '.join(heavy) or 'none'} |",
                flush=True,
            )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
