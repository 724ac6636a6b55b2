"""Training data loader throughput: our path vs the seed-style path, on the same genome.

    python bench/bench_loader.py [--fasta data/lambda_phage_NC_001416.fa] [--windows 2000] [--max-length 1024]

Ours (training_job/sequence_data.py): parse + tokenise each record once (numpy lookup table),
then every batch is one fancy-indexing gather from a uint8 buffer.

Seed-style (the HyenaDNA reference data loader): for every window, slice the FASTA with pyfaidx,
`str()` it and run the Hugging Face CharacterTokenizer on it, then build a tensor. pyfaidx is not
a project dependency: `pip install pyfaidx==0.9.2.2` to run that side (it is skipped, and said so,
when missing). pyfaidx cannot index CRLF files, so that side reads an LF copy of the same FASTA.

Prints tokens/s of both (best of 3 passes) and the speed-up. Both produce [batch, max_length]
int64 tensors of random windows of the same genome.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "training_job"))  # sequence_data, as train.py imports it

from hyenadna import CharacterTokenizer  # noqa: E402
from sequence_data import WindowCorpus, load_records  # noqa: E402

REPEATS = 3  # best of three passes: the machine may be shared


def best_tokens_per_s(one_pass) -> tuple[int, float]:  # noqa: ANN001
    """(tokens of one pass, best tokens/s over REPEATS passes) of `one_pass() -> tokens`."""
    best, tokens = 0.0, 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        tokens = one_pass()
        best = max(best, tokens / (time.perf_counter() - started))
    return tokens, round(best, 1)


def our_loader(fasta: Path, max_length: int, windows: int, batch_size: int) -> dict:
    started = time.perf_counter()
    corpus = WindowCorpus(load_records(fasta), max_length, val_fraction=0.05)
    load_s = time.perf_counter() - started

    def one_pass() -> int:
        tokens = 0
        for step in range(windows // batch_size):
            rows = corpus.train_windows(step, batch_size, seed=0, rc_probability=0.5)
            input_ids, labels = (torch.from_numpy(a) for a in corpus.gather(rows))
            tokens += input_ids.numel()
        return tokens

    tokens, tokens_per_s = best_tokens_per_s(one_pass)
    return {"load_seconds": round(load_s, 4), "tokens": tokens, "tokens_per_s": tokens_per_s}


def seed_style_loader(fasta: Path, max_length: int, windows: int, batch_size: int) -> dict | None:
    try:
        import pyfaidx
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        lf_copy = Path(tmp) / "genome.fa"
        lf_copy.write_bytes(fasta.read_bytes().replace(b"\r\n", b"\n"))
        genome = pyfaidx.Fasta(str(lf_copy))
        name = next(iter(genome.keys()))
        length = len(genome[name])
        tokenizer = CharacterTokenizer(model_max_length=max_length + 2)
        starts = np.random.default_rng(0).integers(0, length - max_length, size=windows)

        def one_pass() -> int:
            tokens = 0
            for i in range(0, windows - batch_size + 1, batch_size):
                batch = []
                for start in starts[i : i + batch_size]:
                    seq = str(genome[name][int(start) : int(start) + max_length])
                    ids = tokenizer(
                        seq,
                        add_special_tokens=False,
                        padding="max_length",
                        max_length=max_length,
                        truncation=True,
                    )["input_ids"]
                    batch.append(torch.LongTensor(ids))
                tokens += torch.stack(batch).numel()
            return tokens

        tokens, tokens_per_s = best_tokens_per_s(one_pass)
    return {"tokens": tokens, "tokens_per_s": tokens_per_s, "pyfaidx": pyfaidx.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fasta", type=Path, default=REPO / "data" / "lambda_phage_NC_001416.fa")
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--seed-style-windows", type=int, default=200, help="the slow path needs fewer")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ours = our_loader(args.fasta, args.max_length, args.windows, args.batch_size)
    seed = seed_style_loader(args.fasta, args.max_length, args.seed_style_windows, args.batch_size)
    report = {
        "machine": f"{platform.machine()} {platform.processor() or ''} cpus={torch.get_num_threads()}",
        "fasta": str(args.fasta.relative_to(REPO) if args.fasta.is_relative_to(REPO) else args.fasta),
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "ours": ours,
        "seed_style": seed if seed else "skipped: pip install pyfaidx==0.9.2.2 to measure it",
    }
    if seed:
        report["speedup"] = round(ours["tokens_per_s"] / seed["tokens_per_s"], 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
