"""GPU training-step throughput and MFU of our HyenaDNA (bf16 autocast, eager and torch.compile).

Times forward + next-token loss + backward + AdamW step (tokens/s, median over steps) and
reports model FLOPs utilisation. Our model runs twice in one invocation, eagerly and compiled,
so the compiler's gain is apart from the implementation's; optionally the reference
implementation runs the same way (eager: it was written for eager mode) for comparison.

    python bench/bench_model_gpu.py                                 # small-32k width, 32k tokens
    python bench/bench_model_gpu.py --seq-len 32768 --batch 4 --n-layer 4 --d-model 256
    python bench/bench_model_gpu.py --reference /tmp/ref/standalone_hyenadna.py
    python bench/bench_model_gpu.py --device cpu --no-compile --seq-len 512 --steps 2   # smoke run

FLOPs per token (forward; training = 3x): per layer 2*d*3d (in_proj) + 2*d*d (out_proj)
+ 4*d*d_inner (MLP) + FFT convolution (2 real FFTs of 2L points, ~2.5*2L*log2(2L) each, and the
complex product, per channel per sequence, divided over L tokens) + 2*d*V (LM head); the filter
MLP is counted once per layer per step. MFU = achieved FLOPs / peak dense bf16 FLOPs of the card
(H100/H200 SXM: 989 TFLOP/s; pass --peak-tflops for others). The FFT part runs on CUDA cores,
not tensor cores, so a Hyena model's MFU sits below a Transformer's at equal efficiency.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_model import ReferenceLM, load_reference  # noqa: E402

import hyenadna  # noqa: E402

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0}


def training_flops_per_step(config: hyenadna.HyenaDNAConfig, batch: int, length: int) -> float:
    """Model FLOPs of one forward+backward (3x forward) at `batch` x `length` tokens."""
    d, d_inner, vocab = config.d_model, config.d_inner, config.padded_vocab_size
    channels = d * (config.hyena_order - 1)
    n = 2 * length
    fft = 2.5 * n * math.log2(n)  # one real FFT of n points
    per_token_layer = (
        2 * d * (config.hyena_order + 1) * d  # in_proj
        + 2 * d * d  # out_proj
        + 4 * d * d_inner  # MLP
        + 2 * 3 * (config.hyena_order + 1) * d  # short conv
        + channels * (2 * fft + 6 * (n // 2 + 1)) / length  # rfft(u) + irfft + complex product
    )
    f = config.filter_order
    filter_mlp = length * 2 * (config.emb_dim * f + config.num_inner_mlps * f * f + f * channels)
    forward = batch * length * (config.n_layer * per_token_layer + 2 * d * vocab)
    forward += config.n_layer * (filter_mlp + channels * fft)  # filters once per layer per step
    return 3 * forward


def peak_flops(device: torch.device, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def time_steps(step, steps: int, warmup: int, device: torch.device) -> list[float]:
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def make_step(loss_fn, model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=32768)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compilation happens here)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="autocast dtype")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled row (eager only)")
    parser.add_argument("--peak-tflops", type=float, help="peak dense bf16 TFLOP/s of the card, for MFU")
    parser.add_argument("--reference", type=Path, help="path to HazyResearch standalone_hyenadna.py")
    args = parser.parse_args()

    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else None
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    config = hyenadna.config_for_size(
        "small",
        d_model=args.d_model,
        n_layer=args.n_layer,
        d_inner=4 * args.d_model,
        max_seq_len=args.seq_len,
    )
    ids = torch.randint(7, 12, (args.batch, args.seq_len), device=device)
    ours = hyenadna.HyenaDNAForCausalLM(config).to(device).train()
    runs = {"ours (eager)": make_step(lambda: ours(ids, labels=ids).loss, ours, device, dtype)}
    if not args.no_compile:
        compiled = torch.compile(ours)  # same parameters; its own optimizer state
        runs["ours (compiled)"] = make_step(lambda: compiled(ids, labels=ids).loss, ours, device, dtype)
    if args.reference:
        reference = ReferenceLM(load_reference(args.reference), config)
        reference.load_ours(ours)
        reference.to(device).train()
        runs["reference (eager)"] = make_step(lambda: reference(ids, ids), reference, device, dtype)

    flops = training_flops_per_step(config, args.batch, args.seq_len)
    peak = peak_flops(device, args.peak_tflops)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device: {card}; torch {torch.__version__}; d_model={args.d_model} n_layer={args.n_layer} "
        f"batch={args.batch} seq_len={args.seq_len} autocast={args.dtype}; "
        f"{flops / 1e12:.2f} TFLOP per step (model FLOPs, fwd+bwd)"
    )
    tokens = args.batch * args.seq_len
    for name, step in runs.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            median = statistics.median(time_steps(step, args.steps, args.warmup, device))
        except RuntimeError as error:  # e.g. the reference's bf16 FFT on a non-power-of-two length
            print(f"{name:>18}: failed: {str(error).splitlines()[0]}")
            continue
        mfu = f"  MFU {100 * flops / median / peak:5.1f}%" if peak else ""
        memory = (
            f"  peak mem {torch.cuda.max_memory_allocated(device) / 2**30:5.1f} GiB"
            if device.type == "cuda"
            else ""
        )
        print(f"{name:>18}: {median * 1000:8.1f} ms/step  {tokens / median:12.0f} tokens/s{mfu}{memory}")


if __name__ == "__main__":
    main()
