"""Loss and perplexity curves of a training run as PNG files (matplotlib, headless Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on SageMaker or CI
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first


def write_training_plots(history: dict[str, list[dict[str, float]]], out_dir: str | Path) -> list[Path]:
    """`loss.png` and `perplexity.png` from history {"train": [{"step", "loss"}...], "eval": [...]}."""
    out_dir = Path(out_dir)
    written = []
    for name, transform, ylabel in (
        ("loss", lambda loss: loss, "cross-entropy (nats / base)"),
        ("perplexity", math.exp, "perplexity"),
    ):
        figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
        for split, style in (("train", "-"), ("eval", "o-")):
            points = history.get(split, [])
            if points:
                axes.plot(
                    [p["step"] for p in points], [transform(p["loss"]) for p in points], style, label=split
                )
        if name == "perplexity":
            axes.axhline(4.0, color="grey", linestyle=":", label="uniform over ACGT")
        axes.set_xlabel("optimizer step")
        axes.set_ylabel(ylabel)
        axes.set_title(f"HyenaDNA pretraining {name}")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        path = out_dir / f"{name}.png"
        figure.savefig(path)
        plt.close(figure)
        written.append(path)
    return written
