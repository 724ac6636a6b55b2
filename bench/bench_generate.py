"""Generation speed of the endpoint's `generate` task, this checkout beside a baseline commit.

    python bench/bench_generate.py                     # 512 new bases after a 1 kb prompt, one thread
    python bench/bench_generate.py --baseline-rev none --new-tokens 1024 --torch-threads 2

The model has the tiny shape (d_model 128, 2 layers) with LongSafari tiny-16k's max_seq_len
(16,386) and seeded random weights, saved once to a temporary directory that both sides load.
Each side runs in its own process (bench/baseline.py) and generates greedily (temperature 0)
through the handler functions, in-process; sides alternate for `--rounds` rounds. The baseline
recomputes the whole sequence for every new base; this checkout continues from a
HyenaGenerationCache. Prints tokens/s per side, the speed-up, and whether both sides
generated the same bases.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from baseline import BASELINE_REV, REPO, code_roots, load_average, run_child

PHIX = REPO / "tests" / "fixtures" / "fasta" / "phix174_NC_001422.fa"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt-length", type=int, default=1000)
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per side")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument(
        "--baseline-rev", default=BASELINE_REV, help="commit to compare with ('none': this checkout only)"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # a model dir: run one side
    return parser.parse_args()


def prompt(length: int) -> str:
    lines = PHIX.read_text().splitlines()
    genome = "".join(line.strip() for line in lines if not line.startswith(">"))
    return (genome * (1 + length // len(genome)))[:length]


def save_model(directory: Path) -> Path:
    import torch

    import hyenadna

    torch.manual_seed(0)
    config = hyenadna.config_for_size("tiny", max_seq_len=16386, embed_dropout=0.0)
    hyenadna.HyenaDNAForCausalLM(config).save_pretrained(directory)
    return directory


def child(args: argparse.Namespace) -> None:
    """One side: load the model with this process's `inference`, generate once, print JSON."""
    import torch

    import inference

    torch.set_num_threads(args.torch_threads)
    loaded = inference.load_model(args.child)
    request = {
        "task": "generate",
        "sequences": [prompt(args.prompt_length)],
        "max_new_tokens": args.new_tokens,
        "temperature": 0,
    }
    body = json.dumps(request).encode()
    warm = dict(request, max_new_tokens=2)
    inference.predict_fn(inference.input_fn(json.dumps(warm).encode(), "application/json"), loaded)
    started, cpu_started = time.perf_counter(), time.process_time()
    answer = inference.predict_fn(inference.input_fn(body, "application/json"), loaded)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(
        json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "generated": answer["results"][0]["generated"]})
    )


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    roots = code_roots(args.baseline_rev)
    print(f"start: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {load_average()}")
    seconds: dict[str, list[float]] = {name: [] for name in roots}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in roots}
    generated: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as workdir:
        model_dir = save_model(Path(workdir) / "model")
        for _ in range(args.rounds):
            for name, root in roots.items():
                child_args = [
                    str(Path(__file__).resolve()),
                    "--child",
                    str(model_dir),
                    "--prompt-length",
                    str(args.prompt_length),
                    "--new-tokens",
                    str(args.new_tokens),
                    "--torch-threads",
                    str(args.torch_threads),
                ]
                result = json.loads(run_child(root, child_args).splitlines()[-1])
                seconds[name].append(result["seconds"])
                cpu_seconds[name].append(result["cpu_seconds"])
                generated[name] = result["generated"]
    print(f"end: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {load_average()}")
    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads {args.torch_threads}; "
        f"model: tiny shape (d_model 128, 2 layers), max_seq_len 16386, random weights; python {sys.version.split()[0]}"
    )
    print(
        f"request: generate, greedy, {args.new_tokens} new bases after a {args.prompt_length}-base prompt, "
        "handler functions in-process\n"
    )
    print("| code | runs | median s per request | new bases/s | CPU s per request | new bases per CPU s |")
    print("|---|---|---|---|---|---|")
    for name in roots:
        median, cpu = statistics.median(seconds[name]), statistics.median(cpu_seconds[name])
        print(
            f"| {name} | {len(seconds[name])} | {median:.2f} | {args.new_tokens / median:,.0f} "
            f"| {cpu:.2f} | {args.new_tokens / cpu:,.0f} |"
        )
    if len(roots) > 1:
        base, ours = (statistics.median(values) for values in seconds.values())
        cpu_base, cpu_ours = (statistics.median(values) for values in cpu_seconds.values())
        same = len(set(generated.values())) == 1
        print(
            f"\nspeed-up: {base / ours:.1f}x wall clock, {cpu_base / cpu_ours:.1f}x CPU time; "
            f"same generated bases on both sides: {'yes' if same else 'NO'}"
        )


if __name__ == "__main__":
    main()
