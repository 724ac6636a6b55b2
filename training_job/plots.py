"""Loss and perplexity curves of a training run as PNG files (matplotlib, headless Agg backend).

The eval curve includes a warm start's step-0 point (the starting model: the baseline, drawn as a
dashed line across the run), the per-source curves ("seen", "new") when the history has them,
and a ring on the evaluation whose weights the artifact holds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on SageMaker or CI
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first


def write_training_plots(
    history: dict[str, list[dict[str, Any]]], out_dir: str | Path, best_step: int | None = None
) -> list[Path]:
    """`loss.png` and `perplexity.png` from history {"train": [{"step", "loss"}...], "eval": [...]}.

    Eval entries may carry "by_source": {"seen": loss, "new": loss} (warm starts).
    """
    out_dir = Path(out_dir)
    written = []
    evals = history.get("eval", [])
    sources = sorted({name for point in evals for name in point.get("by_source", {})}, reverse=True)
    for name, transform, ylabel in (
        ("loss", lambda loss: loss, "cross-entropy (nats / base)"),
        ("perplexity", math.exp, "perplexity"),
    ):
        figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
        train = history.get("train", [])
        if train:
            axes.plot([p["step"] for p in train], [transform(p["loss"]) for p in train], "-", label="train")
        if evals:
            axes.plot([p["step"] for p in evals], [transform(p["loss"]) for p in evals], "o-", label="eval")
        for source, style in zip(sources, ("s--", "^--"), strict=False):
            points = [p for p in evals if source in p.get("by_source", {})]
            axes.plot(
                [p["step"] for p in points],
                [transform(p["by_source"][source]) for p in points],
                style,
                markersize=4,
                alpha=0.7,
                label=f"eval: {source} data",
            )
        if evals and evals[0]["step"] == 0:
            axes.axhline(
                transform(evals[0]["loss"]),
                color="black",
                linestyle="--",
                linewidth=0.8,
                label="baseline (step 0)",
            )
        chosen = [p for p in evals if p["step"] == best_step]
        if chosen:
            axes.plot(
                [best_step],
                [transform(chosen[-1]["loss"])],
                "o",
                markersize=12,
                markerfacecolor="none",
                color="red",
                label=f"kept weights (step {best_step})",
            )
        if name == "perplexity":
            axes.axhline(4.0, color="grey", linestyle=":", label="uniform over ACGT")
        axes.set_xlabel("optimizer step")
        axes.set_ylabel(ylabel)
        axes.set_title(f"HyenaDNA pretraining {name}")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
        figure.tight_layout()
        path = out_dir / f"{name}.png"
        figure.savefig(path)
        plt.close(figure)
        written.append(path)
    return written
