"""`hyenaflow models`: the model registry's history, one line per training job, oldest first.

Each model package of the group (deploy_model registers one per Completed job) shows its
training job, its data (read sets, and the organisms their tags name), the baseline (the
serving model, measured by the job on its held-out data) and the candidate eval perplexity, the
same on "seen" data (records the serving model was trained on), the quality gate's decision and
reason, and which package the endpoint serves now (DescribeEndpoint -> endpoint config -> model
-> its container's ModelPackageName).

The package metadata keys are model_registry.py's, the Lambdas' own module (functions/pipeline):
one definition for the writer and this reader.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any

from hyenaflow.packaging import REPO_ROOT

LAMBDA_CODE = REPO_ROOT / "functions"
ORGANISMS_WIDTH = 24  # the column; the line beneath each version shows them whole


@functools.cache
def _registry() -> Any:
    """functions/pipeline/training/model_registry.py (stdlib only), as the Lambdas import it.
    Imported once: the local stack swaps the Lambdas' modules in and out of sys.modules around
    each invocation (lambda_runtime.py), and this module object stays valid throughout."""
    if str(LAMBDA_CODE) not in sys.path:
        sys.path.append(str(LAMBDA_CODE))
    from pipeline.training import model_registry

    return model_registry


def model_history_reader() -> None:
    """Load what model_history() reads the registry with, now."""
    _registry()


@dataclass(frozen=True)
class ModelVersion:
    version: int | None
    arn: str
    created: Any
    training_job: str
    read_sets: str
    read_set_count: str
    organisms: str  # what the read sets' tags name; "-": registered before packages recorded it
    taxonomy_ids: str
    decision: str
    check: str
    reason: str
    candidate: float | None
    baseline: float | None
    seen_candidate: float | None
    seen_baseline: float | None
    serving: bool


def serving_model_package(sagemaker: Any, endpoint_name: str) -> str | None:
    """The ARN of the model package the endpoint serves, or None (no endpoint, not a package)."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except sagemaker.exceptions.ClientError:
        return None
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return container.get("ModelPackageName")


def model_history(sagemaker: Any, group: str, endpoint_name: str) -> list[ModelVersion]:
    """Every package of `group`, oldest first."""
    registry = _registry()
    serving = serving_model_package(sagemaker, endpoint_name)
    versions: list[ModelVersion] = []
    for summary in registry.model_package_summaries(sagemaker, group, newest_first=False):
        described = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        registered = registry.RegisteredModel.from_description(described)
        gate = registered.gate_record()
        metadata = registered.metadata
        versions.append(
            ModelVersion(
                version=registered.version,
                arn=registered.arn,
                created=described.get("CreationTime"),
                training_job=metadata.get(registry.TRAINING_JOB_KEY, "?"),
                read_sets=metadata.get("ReadSets", "unknown"),
                read_set_count=metadata.get("ReadSetCount", "?"),
                organisms=metadata.get("Organisms", "-"),
                taxonomy_ids=metadata.get("TaxonomyIds", "-"),
                decision=registered.approval_status or "unset",
                check=gate["check"] or "",
                reason=gate["reason"] or "",
                candidate=gate["candidate"],
                baseline=gate["baseline"],
                seen_candidate=gate["seen_candidate"],
                seen_baseline=gate["seen_baseline"],
                serving=serving is not None and serving in (registered.arn, _versioned_name(described)),
            )
        )
    return versions


def _versioned_name(described: dict[str, Any]) -> str:
    return f"{described.get('ModelPackageGroupName')}/{described.get('ModelPackageVersion')}"


def _ppl(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _column(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def format_model_history(versions: list[ModelVersion], group: str, endpoint_name: str) -> list[str]:
    """The table `hyenaflow models` prints: a line per version, its gate reason beneath."""
    if not versions:
        return [f"model package group {group}: no models registered yet"]
    serving = [v.version for v in versions if v.serving]
    lines = [
        f"model package group {group}, oldest first; endpoint {endpoint_name} serves "
        + (f"version {serving[0]}" if serving else "none of them"),
        f"{'ver':>3}  {'training job':<28} {'read sets':>9}  {'organisms':<{ORGANISMS_WIDTH}}  "
        f"{'baseline':>8} {'candidate':>9}  "
        f"{'seen: baseline -> candidate':<27}  decision",
    ]
    for v in versions:
        seen = "-" if v.seen_baseline is None else f"{_ppl(v.seen_baseline)} -> {_ppl(v.seen_candidate)}"
        lines.append(
            f"{v.version if v.version is not None else '-':>3}  {v.training_job:<28} {v.read_set_count:>9}  "
            f"{_column(v.organisms, ORGANISMS_WIDTH):<{ORGANISMS_WIDTH}}  "
            f"{_ppl(v.baseline):>8} {_ppl(v.candidate):>9}  {seen:<27}  {v.decision}"
            + ("  <- serving" if v.serving else "")
        )
        lines.append(f"{'':5}{v.check}: {v.reason}" if v.check else f"{'':5}{v.reason}")
        lines.append(f"{'':5}read sets: {v.read_sets}")
        lines.append(f"{'':5}organisms: {v.organisms} (taxonomy ids: {v.taxonomy_ids})")
    return lines
