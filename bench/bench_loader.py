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

    python bench/bench_loader.py --readers [--readers-mb 64]

FASTA readers on one generated FASTA (bench_ingest's generator, 80-column lines), best of 3, MB
per CPU-second, each producing (record id, normalized ACGTN bytes) per record:
- ours: `sequence_data.read_fasta` (a record's lines joined and normalized once; errors name
  file:line:column);
- per-line normalize: the reader before it (every line normalized and checked on its own);
- Biopython `SimpleFastaParser` + normalize: whole records, no line numbers for errors;
- Biopython `SimpleFastaParser` + normalize + line numbers: the same behind a line-counting
  wrapper, which is what it would need to name the line of a bad base.
"""

from __future__ import annotations

import argparse
import json
import os
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


def fasta_readers(fasta: Path) -> dict:
    """MB per CPU-second of each FASTA reader on the same file (best of REPEATS)."""
    import io

    from Bio.SeqIO.FastaIO import SimpleFastaParser

    from hyenadna.alphabet import INVALID_BYTE, normalize_bases
    from sequence_data import normalized_line, open_sequence_stream, read_fasta

    size_mb = fasta.stat().st_size / 1e6

    def ours(handle) -> list:  # noqa: ANN001
        return [(rid, len(bases)) for rid, bases in read_fasta(open_sequence_stream(handle), "bench")]

    def per_line(handle) -> list:  # noqa: ANN001
        records, record_id, parts = [], None, []
        for number, line in enumerate(handle, start=1):
            if line.startswith(b">"):
                if record_id is not None:
                    records.append((record_id, len(b"".join(parts))))
                record_id, parts = line[1:].split()[0].decode(), []
            elif line.strip():
                parts.append(normalized_line(line, "bench", number))
        records.append((record_id, len(b"".join(parts))))
        return records

    def simple_fasta_parser(handle, numbered: bool = False) -> list:  # noqa: ANN001
        text = io.TextIOWrapper(handle, encoding="utf-8")
        lines = _NumberedText(text) if numbered else text
        records = []
        for title, sequence in SimpleFastaParser(lines):
            bases = normalize_bases(sequence.encode())
            if INVALID_BYTE in bases:
                raise ValueError(title)
            records.append((title.split(None, 1)[0], len(bases)))
        return records

    readers = {
        "ours (sequence_data.read_fasta)": ours,
        "per-line normalize (the reader before)": per_line,
        "Biopython SimpleFastaParser + normalize": simple_fasta_parser,
        "Biopython SimpleFastaParser + normalize + line numbers": lambda h: simple_fasta_parser(h, True),
    }
    rates, results = {}, set()
    for name, read in readers.items():
        best = 0.0
        for _ in range(REPEATS):
            with fasta.open("rb") as handle:
                started = time.process_time()
                records = read(handle)
                best = max(best, size_mb / (time.process_time() - started))
        results.add(tuple(records))
        rates[name] = round(best, 1)
    assert len(results) == 1, "the readers disagree"
    return {"fasta_mb": round(size_mb, 1), "mb_per_cpu_s": rates}


class _NumberedText:
    """Line iteration that counts lines and where each record starts (for file:line errors)."""

    def __init__(self, text) -> None:  # noqa: ANN001
        self._text, self.line, self.header_lines = text, 0, []

    def __iter__(self):  # noqa: ANN204
        for line in self._text:
            self.line += 1
            if line[:1] == ">":
                self.header_lines.append(self.line)
            yield line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fasta", type=Path, default=REPO / "data" / "lambda_phage_NC_001416.fa")
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--seed-style-windows", type=int, default=200, help="the slow path needs fewer")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--readers", action="store_true", help="compare FASTA readers instead")
    parser.add_argument("--readers-mb", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hyenaflow-bench"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.readers:
        sys.path.insert(0, str(REPO / "bench"))
        from bench_ingest import generate_fasta

        fasta = args.workdir / f"bench_{args.readers_mb}mb.fa"
        generate_fasta(fasta, args.readers_mb)
        print(f"python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}", flush=True)
        print(json.dumps(fasta_readers(fasta), indent=2))
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        return
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
