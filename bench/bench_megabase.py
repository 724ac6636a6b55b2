"""A megabase in one request: `embed` and `score` of 1,000,000 bases, time and peak memory.

    python bench/bench_megabase.py                                  # vs the baseline commit
    python bench/bench_megabase.py --lengths 262144 1000000 --baseline-rev none

The model has LongSafari large-1m's shape (d_model 256, 8 layers, d_inner 1024, max_seq_len
1,000,002) with seeded random weights, saved once and loaded by every case with `model_fn`.
Each case (code side x task x length) runs in a fresh process, so its peak resident memory
(VmHWM from /proc/self/status) is its own; the request goes through the handler functions
(input_fn -> predict_fn -> output_fn). Every process runs under an address-space cap
(`--cap-gb`, RLIMIT_AS) so a side that does not fit fails with an out-of-memory error instead
of pushing the shared machine into swap or the OOM killer. The baseline commit runs the whole
sequence in one forward pass (4582691, the default); this checkout runs passes longer than
BATCH_TOKENS (4,096; 65,536 before 2026-11-29) through the chunked forward.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baseline import BASELINE_REV, code_roots, load_average, python_env

TASKS = ("embed", "score")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--cap-gb", type=float, default=14.0, help="address-space cap per case (GiB)")
    parser.add_argument("--torch-threads", type=int, default=None, help="default: all cores")
    parser.add_argument(
        "--baseline-rev", default=BASELINE_REV, help="commit to compare with ('none': this checkout only)"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # model dir: run one case
    parser.add_argument("--task", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def save_model(directory: Path) -> Path:
    import torch

    import hyenadna

    torch.manual_seed(0)
    config = hyenadna.config_for_size("large", embed_dropout=0.0)
    hyenadna.HyenaDNAForCausalLM(config).save_pretrained(directory)
    return directory


def child(args: argparse.Namespace) -> None:
    """One case, in this process: load, one request, print time and memory as JSON."""
    cap = int(args.cap_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import numpy as np
    import torch

    import inference

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    loaded = inference.model_fn(str(args.child))
    sequence = "".join(np.random.default_rng(0).choice(list("ACGT"), args.length))
    body = json.dumps({"task": args.task, "sequences": [sequence]}).encode()
    loaded_rss = status_kib("VmRSS")
    started = time.perf_counter()
    try:
        answer = json.loads(
            inference.output_fn(
                inference.predict_fn(inference.input_fn(body, "application/json"), loaded), None
            )
        )
        outcome = "ok"
    except (MemoryError, RuntimeError) as error:  # the cap reached: torch raises RuntimeError
        answer, outcome = None, f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
    elapsed = time.perf_counter() - started
    summary = None
    if answer is not None:
        result = answer["results"][0]
        summary = result.get("log_likelihood", result.get("embedding", [None])[0])
    print(
        json.dumps(
            {
                "outcome": outcome,
                "seconds": elapsed,
                "peak_rss_kib": status_kib("VmHWM"),
                "loaded_rss_kib": loaded_rss,
                "summary": summary,
                "threads": torch.get_num_threads(),
            }
        )
    )


def run_case(root: Path, model_dir: Path, task: str, length: int, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(model_dir),
        "--task",
        task,
        "--length",
        str(length),
        "--cap-gb",
        str(args.cap_gb),
    ]
    if args.torch_threads:
        command += ["--torch-threads", str(args.torch_threads)]
    done = subprocess.run(command, env=python_env(root), capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {
            "outcome": f"failed: exit {done.returncode}: {last[:160]}",
            "seconds": None,
            "peak_rss_kib": None,
        }
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    roots = code_roots(args.baseline_rev)
    print(f"start: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {load_average()}")
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        model_dir = save_model(Path(workdir) / "large-1m-random")
        for length in args.lengths:
            for task in args.tasks:
                for name, root in roots.items():
                    result = run_case(root, model_dir, task, length, args)
                    rows.append((length, task, name, result))
                    print(f"  {length:,} {task} {name}: {result}", flush=True)
    print(f"end: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {load_average()}")
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; model: large-1m shape "
        f"(d_model 256, 8 layers, max_seq_len 1,000,002), random weights; cap {args.cap_gb:g} GiB address space per case\n"
    )
    print("| bases | task | code | outcome | seconds | peak RSS GiB | RSS after loading GiB |")
    print("|---|---|---|---|---|---|---|")
    for length, task, name, result in rows:
        seconds = f"{result['seconds']:.1f}" if result.get("seconds") is not None else "-"
        peak = f"{result['peak_rss_kib'] / 2**20:.2f}" if result.get("peak_rss_kib") else "-"
        loaded = f"{result['loaded_rss_kib'] / 2**20:.2f}" if result.get("loaded_rss_kib") else "-"
        print(f"| {length:,} | {task} | {name} | {result['outcome']} | {seconds} | {peak} | {loaded} |")


if __name__ == "__main__":
    main()
