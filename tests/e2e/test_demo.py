"""`make demo`'s story (hyenaflow demo) on a small training budget: two genomes, one endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyenaflow.local.demo import run_demo


@pytest.mark.slow
def test_demo_creates_the_endpoint_then_updates_it_in_place_with_the_second_genome(tmp_path: Path) -> None:
    lines: list[str] = []

    result = run_demo(workdir=tmp_path / "demo", train_steps=5, second_file=True, write=lines.append)

    assert result.ok, f"{result.error}\n" + "\n".join(lines[-30:])
    assert len(result.training_jobs) == 2 and len(set(result.training_jobs)) == 2
    assert len(result.endpoint_configs) == 2  # the second model went out through UpdateEndpoint
    assert any(
        "UPDATED in place by UpdateEndpoint" in line and "endpoints in the account: 1" in line
        for line in lines
    )
    assert result.score is not None and result.score["results"][0]["scored_bases"] > 0
    assert {plot.name for plot in result.plots} >= {"loss.png", "perplexity.png"}
    assert all(plot.is_file() and plot.stat().st_size > 0 for plot in result.plots)
