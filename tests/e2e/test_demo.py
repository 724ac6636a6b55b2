"""`make demo`'s story (hyenaflow demo) with the pipeline's default gate, on a shorter budget:
the second genome's model beats the serving one on the same held-out data and is deployed; a
job with a far too high learning rate does not, is registered Rejected, and the endpoint keeps
serving the second model. The figures are read from the artifacts' metrics.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyenaflow.local.demo import DEMO_QUERY_BASES, LAMBDA_PHAGE, first_bases, run_demo
from tests.support.direct_model import direct_log_likelihood
from tests.support.tolerances import summed_log_likelihood_atol
from tests.support.training_budget import DEMO_TEST_STEPS

# Three training jobs, two deployments: ~4 min on 2 free cores, 10-15 min when other work shares
# them (the suite's 600 s per-test limit is for a test that hangs, not one that trains).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_demo_deploys_the_model_that_beats_its_baseline_and_refuses_the_one_that_does_not(
    tmp_path: Path,
) -> None:
    lines: list[str] = []

    result = run_demo(
        workdir=tmp_path / "demo", train_steps=DEMO_TEST_STEPS, second_file=True, write=lines.append
    )

    assert result.ok, f"{result.error}\n" + "\n".join(lines[-40:])
    first, second, refused = result.training_jobs
    cold, warm, too_high = result.metrics
    # 1. the first model: a cold start, no baseline, deployed
    assert "baseline_eval_perplexity" not in cold and cold["eval_perplexity"] < 4.0
    # 2. the second genome: measured against the serving model on the same held-out data, better
    assert warm["init_from"].endswith(f"{first}/output/model.tar.gz")
    assert warm["eval_perplexity"] <= warm["baseline_eval_perplexity"]
    assert set(warm["eval_by_source"]) == {"seen", "new"}  # lambda (seen by model 1) and phiX174
    # 3. the follow-up with the override: worse than its baseline (the second model), refused
    assert too_high["init_from"].endswith(f"{second}/output/model.tar.gz")
    assert too_high["learning_rate"] == 0.5
    assert too_high["eval_perplexity"] > too_high["baseline_eval_perplexity"]
    assert too_high["baseline_eval_perplexity"] == pytest.approx(warm["eval_perplexity"], rel=1e-3)
    # the registry: one version per job, the gate's decision and reason
    assert [(v.training_job, v.version, v.decision) for v in result.registry] == [
        (first, 1, "Approved"),
        (second, 2, "Approved"),
        (refused, 3, "Rejected"),
    ]
    assert result.registry[2].check == "regressed" and "above its baseline" in result.registry[2].reason
    assert result.registry[1].baseline == pytest.approx(warm["baseline_eval_perplexity"], abs=1e-5)
    assert result.registry[1].candidate == pytest.approx(warm["eval_perplexity"], abs=1e-5)
    # the endpoint: updated in place once, and still serving the second model
    assert result.endpoint_configs == [first, second]
    assert result.serving_config == second
    assert [v.serving for v in result.registry] == [False, True, False]
    assert any("UPDATED in place by UpdateEndpoint" in line for line in lines)
    assert any(f"still serves {second}" in line for line in lines)
    # what the endpoint says is what the serving model's own weights say (not merely "some bases")
    (scored,) = result.score["results"]
    query = first_bases(LAMBDA_PHAGE, DEMO_QUERY_BASES)
    assert scored["scored_bases"] == len(query) - 1
    assert scored["log_likelihood"] == pytest.approx(
        direct_log_likelihood(result.artifacts[1], query), abs=summed_log_likelihood_atol(len(query) - 1)
    )
    assert scored["perplexity"] < 4.0  # the trained model beats a uniform guess on lambda's first bases
    assert {plot.name for plot in result.plots} >= {"loss.png", "perplexity.png"}
