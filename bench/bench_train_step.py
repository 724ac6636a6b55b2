"""Training step throughput of train.py's step (forward, backward, clip, AdamW) and loader headroom.

    python bench/bench_train_step.py [--sizes tiny,small] [--max-length 1024] [--batch-size 8] [--steps 5]

On CUDA the step runs under bf16 autocast, as train.py does; on CPU in fp32. For each size it
prints tokens/s of the step and how many times faster the data loader (sequence_data gather on
the lambda phage genome) produces the same batches, i.e. whether loading can ever be the
bottleneck. Model FLOPs (MFU) are reported by bench/bench_model.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "training_job"))  # sequence_data, as train.py imports it

from hyenadna import HyenaDNAForCausalLM, config_for_size  # noqa: E402
from sequence_data import WindowCorpus, load_records  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="tiny")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    )
    corpus = WindowCorpus(
        load_records(REPO / "data" / "lambda_phage_NC_001416.fa"), args.max_length, val_fraction=0.05
    )
    batches = [
        corpus.gather(corpus.train_windows(s, args.batch_size, seed=0, rc_probability=0.5))
        for s in range(args.steps + 2)
    ]

    started = time.perf_counter()
    for s in range(50):
        corpus.gather(corpus.train_windows(s, args.batch_size, seed=0, rc_probability=0.5))
    loader_tokens_per_s = 50 * args.batch_size * args.max_length / (time.perf_counter() - started)

    for size in args.sizes.split(","):
        family = config_for_size(size)
        config = config_for_size(size, max_seq_len=max(family.max_seq_len, args.max_length + 2))
        model = HyenaDNAForCausalLM(config).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")

        def step(input_ids, labels, model=model, optimizer=optimizer):  # noqa: ANN001, ANN202
            input_ids, labels = torch.from_numpy(input_ids).to(device), torch.from_numpy(labels).to(device)
            with autocast:
                loss = model(input_ids=input_ids, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss

        for batch in batches[:2]:  # warm-up (allocator, cuFFT plans)
            step(*batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for batch in batches[2:]:
            loss = step(*batch)
        loss.item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        step_tokens_per_s = args.steps * args.batch_size * args.max_length / elapsed
        print(
            json.dumps(
                {
                    "size": size,
                    "device": torch.cuda.get_device_name()
                    if device.type == "cuda"
                    else platform.processor() or "cpu",
                    "threads": torch.get_num_threads(),
                    "bf16": device.type == "cuda",
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "batch": [args.batch_size, args.max_length],
                    "step_seconds": round(elapsed / args.steps, 4),
                    "train_tokens_per_s": round(step_tokens_per_s, 1),
                    "loader_tokens_per_s": round(loader_tokens_per_s, 1),
                    "loader_headroom_x": round(loader_tokens_per_s / step_tokens_per_s, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
