"""What a trained model says about a sequence, computed from its saved weights alone (no endpoint
code): the reference the endpoint's answers are checked against."""

from __future__ import annotations

from pathlib import Path


def direct_log_likelihood(model_dir: Path, sequence: str) -> float:
    """Sum of log P(base i | bases before it), i >= 1, from the saved weights."""
    import torch

    import hyenadna

    model = hyenadna.HyenaDNAForCausalLM.from_pretrained(model_dir).eval()
    ids = torch.from_numpy(hyenadna.encode_dna(sequence))[None]
    with torch.no_grad():
        log_probs = torch.log_softmax(model(ids).logits[0, :-1].double(), dim=-1)
    return float(log_probs.gather(-1, ids[0, 1:, None]).sum())
