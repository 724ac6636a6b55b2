"""CPU training-step throughput of our HyenaDNA, optionally against the reference implementation.

Times forward + next-token loss + backward (tokens/s, median over steps) at the small-32k width
(d_model 256, 4 layers) on 2 x 8192 tokens, fp32, train mode (embedding dropout on), tied LM head.

    python bench/bench_model.py
    python bench/bench_model.py --reference /tmp/ref/standalone_hyenadna.py   # compare

The reference is HazyResearch/hyena-dna `standalone_hyenadna.py` (not shipped with this project:
fetch it yourself; it needs `einops`, and `torchvision` only for an identity StochasticDepth,
which is stubbed here when torchvision is missing). With --reference, both models get the same
weights, are checked to compute the same function, and are timed in alternating steps so drift
on a shared machine hits both equally.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import hyenadna


def load_reference(path: Path) -> types.ModuleType:
    if importlib.util.find_spec("torchvision") is None:
        # Only StochasticDepth is used, with p=0: an identity.
        ops = types.ModuleType("torchvision.ops")
        ops.StochasticDepth = lambda p, mode: nn.Identity()
        sys.modules["torchvision"] = types.ModuleType("torchvision")
        sys.modules["torchvision.ops"] = ops
    spec = importlib.util.spec_from_file_location("standalone_hyenadna", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as error:
        raise SystemExit(
            f"{path}: the reference needs {error.name!r}; install it (e.g. pip install --target /tmp/refdeps "
            f"einops==0.8.2) and put it on PYTHONPATH"
        ) from error
    return module


class ReferenceLM(nn.Module):
    """Reference backbone + the tied LM head of the original training (logits = h @ E^T)."""

    def __init__(self, reference: types.ModuleType, config: hyenadna.HyenaDNAConfig) -> None:
        super().__init__()
        layer = {
            "_name_": "hyena",
            "emb_dim": config.emb_dim,
            "filter_order": config.filter_order,
            "l_max": config.max_seq_len,
            "w": config.activation_freq,
            "num_inner_mlps": config.num_inner_mlps,
            "order": config.hyena_order,
        }
        self.model = reference.HyenaDNAModel(
            d_model=config.d_model,
            n_layer=config.n_layer,
            d_inner=config.d_inner,
            vocab_size=config.vocab_size,
            layer=layer,
            embed_dropout=config.embed_dropout,
            pad_vocab_size_multiple=config.pad_vocab_size_multiple,
        )

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids)
        logits = F.linear(hidden, self.model.backbone.embeddings.word_embeddings.weight)
        return hyenadna.modeling_hyenadna.next_token_loss(logits, labels)

    def load_ours(self, ours: hyenadna.HyenaDNAForCausalLM) -> None:
        """Copy our weights in (key names differ only by the `hyena.` prefix)."""
        state = {k.removeprefix("hyena."): v for k, v in ours.state_dict().items() if k != "lm_head.weight"}
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        # Only the repeated Sin positions (one shared module) are "missing".
        assert all(".freq" in k for k in missing) and not unexpected, (missing, unexpected)


def train_step(step_fn, model: nn.Module) -> float:
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    loss = step_fn()
    loss.backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--reference", type=Path, help="path to HazyResearch standalone_hyenadna.py")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = hyenadna.config_for_size(
        "small",
        d_model=args.d_model,
        n_layer=args.n_layer,
        d_inner=4 * args.d_model,
        max_seq_len=args.seq_len,
    )
    ours = hyenadna.HyenaDNAForCausalLM(config)
    ids = torch.randint(7, 12, (args.batch, args.seq_len))
    runs = {"ours": (lambda: ours(ids, labels=ids).loss, ours)}

    if args.reference:
        reference = ReferenceLM(load_reference(args.reference), config)
        reference.load_ours(ours)
        check_ids = ids[:, :1024]
        ours.eval()
        reference.eval()
        with torch.no_grad():
            ours_hidden = ours.hyena(check_ids).last_hidden_state
            diff = (ours_hidden - reference.model(check_ids)).abs().max().item()
        print(f"same weights, max |hidden ours - reference| (eval, 2x1024 tokens): {diff:.2e}")
        runs["reference"] = (lambda: reference(ids, ids), reference)
    for _, model in runs.values():
        model.train()

    times: dict[str, list[float]] = {name: [] for name in runs}
    for step in range(args.warmup + args.steps):
        for name, (step_fn, model) in runs.items():
            elapsed = train_step(step_fn, model)
            if step >= args.warmup:
                times[name].append(elapsed)

    tokens = args.batch * args.seq_len
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; d_model={args.d_model} n_layer={args.n_layer} "
        f"batch={args.batch} seq_len={args.seq_len} fp32, forward+backward, median of {args.steps}"
    )
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:>9}: {median * 1000:8.1f} ms/step  {tokens / median:10.0f} tokens/s")
    if "reference" in times:
        speedup = statistics.median(times["reference"]) / statistics.median(times["ours"])
        print(f"speedup ours vs reference: {speedup:.2f}x")


if __name__ == "__main__":
    main()
