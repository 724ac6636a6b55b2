"""Does continued pretraining improve the model, on the same held-out data? (docs/benchmarks.md)

The demo's story, with train.py run directly on the FASTQ tiles ingest writes (read-set layout):

    job 1  cold start on lambda phage                      train.py defaults
    job 2  warm start from job 1 on lambda + phiX174      train.py defaults (--warm-start-* apply)
    job 3  warm start from job 2 on the same data          --learning-rate 0.5 (far too high)

Each warm-started job measures its starting model at step 0 on its own evaluation set (the
baseline) and keeps its best evaluation's weights (the candidate). The table shows, per seed and
job, baseline and candidate perplexity overall and on the "seen" (lambda, which the starting
model was trained on) and "new" (phiX174) held-out blocks, and whether the candidate beats the
baseline. Every job has the local budget, train.py's DEFAULTS (150 steps x 8 x 1,024 bases).

    python bench/bench_continued_pretraining.py                       # seeds 1337 1 2, ~25 min on 2 cores
    python bench/bench_continued_pretraining.py --seeds 1337 --warm-start-learning-rate 3e-4

Job 1 is cached per seed under --workdir (a rerun with other job-2 settings reuses it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions"))  # the ingest Lambda's own tile writer

from pipeline.ingest.fasta_stream import FastaToFastq  # noqa: E402

TRAIN = REPO / "training_job" / "train.py"
GENOMES = {
    "lambda": REPO / "data" / "lambda_phage_NC_001416.fa",
    "phix": REPO / "data" / "phix174_NC_001422.fa",
}


def write_read_set(genome: Path, folder: Path) -> None:
    """The genome as ingest stages it (FASTQ tiles, gzip), in a HealthOmics read-set folder."""
    import gzip

    converter = FastaToFastq()
    tiles = converter.feed(genome.read_bytes()) + converter.finish()[0]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{genome.stem}.fastq.gz").write_bytes(gzip.compress(tiles))


def train(model_dir: Path, data: Path, extra: list[str]) -> dict:
    """Run train.py to the end in a fresh model_dir (cached: same command, finished -> reused)."""
    command = [sys.executable, str(TRAIN), "--data", str(data), "--model-dir", str(model_dir), *extra]
    done = model_dir / "bench_command.json"
    if done.is_file() and json.loads(done.read_text()) == command and (model_dir / "metrics.json").is_file():
        return json.loads((model_dir / "metrics.json").read_text())
    shutil.rmtree(model_dir, ignore_errors=True)
    started = time.perf_counter()
    print(f"  $ {' '.join(command[1:])}", flush=True)
    run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if run.returncode:
        raise SystemExit(f"train.py failed:\n{run.stderr[-3000:]}")
    (model_dir / "train.log").write_text(run.stdout + run.stderr)
    done.write_text(json.dumps(command))
    print(f"    {time.perf_counter() - started:.0f} s", flush=True)
    return json.loads((model_dir / "metrics.json").read_text())


def row(seed: int, job: str, metrics: dict) -> str:
    def pair(figures: dict) -> str:
        return f"{figures['baseline_eval_perplexity']:.4f} -> {figures['eval_perplexity']:.4f}"

    by_source = metrics.get("eval_by_source", {})
    if "baseline_eval_perplexity" not in metrics:
        overall, verdict = f"{metrics['eval_perplexity']:.4f} (cold start)", ""
    else:
        overall = pair(metrics)
        verdict = "yes" if metrics["eval_perplexity"] <= metrics["baseline_eval_perplexity"] else "NO"
    cells = [
        str(seed),
        job,
        f"{metrics['learning_rate']:g} / {metrics['warmup_steps']}",
        overall,
        verdict,
        pair(by_source["seen"]) if "seen" in by_source else "",
        pair(by_source["new"]) if "new" in by_source else "",
        str(metrics["best_step"]),
        f"{metrics['final_eval_perplexity']:.4f}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337, 1, 2])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hyenaflow-bench/continued"))
    parser.add_argument("--warm-start-learning-rate", help="job 2 only (default: train.py's)")
    parser.add_argument("--warm-start-warmup-steps", help="job 2 only (default: train.py's)")
    parser.add_argument("--job3-learning-rate", default="0.5", help="job 3's --learning-rate; '' skips job 3")
    args = parser.parse_args()

    lambda_only, both = args.workdir / "data" / "lambda", args.workdir / "data" / "lambda_phix"
    if not both.is_dir():
        write_read_set(GENOMES["lambda"], lambda_only / "readSet" / "1000000001")
        write_read_set(GENOMES["lambda"], both / "readSet" / "1000000001")
        write_read_set(GENOMES["phix"], both / "readSet" / "1000000002")
    job2_settings = [
        item
        for flag, value in (
            ("--warm-start-learning-rate", args.warm_start_learning_rate),
            ("--warm-start-warmup-steps", args.warm_start_warmup_steps),
        )
        if value
        for item in (flag, value)
    ]
    job2_name = "job2" + "".join(f"_{v}" for v in job2_settings[1::2])
    rows = []
    for seed in args.seeds:
        print(f"seed {seed}", flush=True)
        runs = args.workdir / f"seed{seed}"
        job1 = train(runs / "job1", lambda_only, ["--seed", str(seed)])
        rows.append(row(seed, "1: lambda, cold", job1))
        job2_dir = runs / job2_name
        job2 = train(job2_dir, both, ["--seed", str(seed), "--init-from", str(runs / "job1"), *job2_settings])
        rows.append(row(seed, "2: + phiX174, warm", job2))
        if args.job3_learning_rate:
            job3 = train(
                runs / f"{job2_name}_job3_lr{args.job3_learning_rate}",
                both,
                [
                    "--seed",
                    str(seed),
                    "--init-from",
                    str(job2_dir),
                    "--learning-rate",
                    args.job3_learning_rate,
                ],
            )
            rows.append(row(seed, "3: same data, warm", job3))
    print()
    print(
        "| seed | job | peak lr / warmup | eval perplexity: baseline -> candidate | beats baseline | "
        "seen data: baseline -> candidate | new data: baseline -> candidate | best step | "
        "final-step perplexity |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
