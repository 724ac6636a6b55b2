"""The model and endpoint code of an earlier commit, to benchmark side by side with this checkout.

A benchmark that compares "before" and "after" runs both in the same invocation: it exports
`hyenadna/` and `endpoint/` of the baseline commit with `git archive` and runs each side in its
own Python process with that code first on sys.path (two versions of one package cannot share a
process). The default baseline is the commit before the inference speed work of issue 15.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE_REV = "4582691"  # main before issue 15 (cached filters, incremental generation, chunked forward)
CODE_DIRS = ("hyenadna", "endpoint")


def export_code(rev: str, destination: Path) -> Path:
    """`hyenadna/` and `endpoint/` as of `rev` under destination/; returns destination."""
    destination.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, *CODE_DIRS], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
    return destination


def code_roots(baseline_rev: str | None) -> dict[str, Path]:
    """{"baseline (<rev>)": exported tree, "this checkout": REPO}; no baseline for None, "" or
    "none" (the benches' `--baseline-rev none`)."""
    roots = {}
    if baseline_rev and baseline_rev.lower() != "none":
        exported = Path(tempfile.mkdtemp(prefix=f"hyenaflow-baseline-{baseline_rev}-"))
        roots[f"baseline ({baseline_rev})"] = export_code(baseline_rev, exported)
    roots["this checkout"] = REPO
    return roots


def python_env(code_root: Path, **extra: str) -> dict[str, str]:
    """Environment for a child Python that imports `hyenadna`, `inference` and `dna_tasks` from code_root."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(code_root / "endpoint"), str(code_root)])
    env.update(extra)
    return env


def artifact_with_code(model_dir: Path, code_root: Path, destination: Path) -> Path:
    """A model directory whose code/ holds code_root's endpoint and hyenadna, as a packaged artifact
    does: serve.py (and the SageMaker container) then serve with that code."""
    destination.mkdir(parents=True, exist_ok=True)
    for item in model_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, destination / item.name)
    code = destination / "code"
    code.mkdir(exist_ok=True)
    for name in ("inference.py", "dna_tasks.py", "serve.py"):
        shutil.copy2(code_root / "endpoint" / name, code / name)
    shutil.copytree(code_root / "hyenadna", code / "hyenadna", dirs_exist_ok=True)
    return destination


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min), {os.cpu_count()} CPUs"


def run_child(code_root: Path, args: list[str], **env: str) -> str:
    """Run `python <args>` with code_root's packages first on sys.path; returns its stdout."""
    done = subprocess.run(
        [sys.executable, *args], env=python_env(code_root, **env), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout
