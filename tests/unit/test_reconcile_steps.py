"""The reconciler's own logic: what it hands on, and that one stuck item blocks nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.settings import load_settings
from pipeline.state_table import Slot
from pipeline.training import reconciler
from pipeline.training.settings import ReconcileSettings

# What the template gives the reconcile function, defaults left as they are.
RECONCILE_ENV = {
    "DATA_BUCKET": "data-bucket",
    "STATE_TABLE": "state",
    "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
    "SEQUENCE_STORE_ID": "1234567890",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm",
    "TRAINING_IMAGE_URI": "image:1",
    "TRAINING_SOURCE_URI": "s3://data-bucket/code/training/sourcedir.tar.gz",
    "INFERENCE_IMAGE_URI": "image:2",
    "JOB_NAME_PREFIX": "hyenaflow",
    "MODEL_PACKAGE_GROUP": "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/hyenaflow-models",
    "OMICS_TPS": "1000",
}


class _Omics:
    def __init__(self, jobs: dict[str, str]) -> None:
        self.jobs = jobs
        self.filters: list[dict[str, Any]] = []

    def list_read_set_import_jobs(self, **kwargs: Any) -> dict[str, Any]:
        self.filters.append(kwargs["filter"])
        wanted = kwargs["filter"]["status"]
        return {"importJobs": [{"id": i, "status": s} for i, s in self.jobs.items() if s == wanted]}


class _SageMaker:
    def __init__(self, jobs: dict[str, str]) -> None:
        self.jobs = jobs

    def list_training_jobs(self, **kwargs: Any) -> dict[str, Any]:
        return {
            "TrainingJobSummaries": [
                {"TrainingJobName": n, "TrainingJobStatus": s}
                for n, s in self.jobs.items()
                if s == kwargs["StatusEquals"] and kwargs["NameContains"] in n
            ]
        }


class _State:
    def __init__(self, handled: set[str]) -> None:
        self.handled = handled

    def marker(self, kind: str, ident: str) -> dict[str, Any] | None:
        return {"sk": ident} if ident in self.handled else None

    def slot(self) -> Slot:
        return Slot()  # idle: the slot-job step has nothing to do


def _deps(imports: dict[str, str], jobs: dict[str, str], handled: set[str]) -> Any:
    return SimpleNamespace(
        settings=load_settings(ReconcileSettings, RECONCILE_ENV),
        omics=_Omics(imports),
        sagemaker=_SageMaker(jobs),
        state=_State(handled),
    )


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []

    def on_training(deps: Any, name: str) -> dict[str, Any]:
        seen.append(name)
        if name == "hyenaflow-stuck":
            raise RuntimeError("endpoint is Updating")
        return {"outcome": "deployed"}

    def on_import(deps: Any, job_id: str, status: str) -> dict[str, Any]:
        seen.append(f"{job_id}:{status}")
        return {"outcome": "started"}

    monkeypatch.setattr(reconciler, "handle_training_job_end", on_training)
    monkeypatch.setattr(reconciler, "handle_import_status", on_import)
    for step in (
        "continue_activation",
        "ensure_running_job",
        "start_pending_follow_up",
        "sync_serving_with_endpoint",
    ):
        monkeypatch.setattr(reconciler, step, lambda *a, **k: None)
    return seen


def test_only_unhandled_jobs_of_this_stack_are_handed_on(calls: list[str]) -> None:
    deps = _deps(
        imports={"4000000001": "COMPLETED", "4000000002": "FAILED", "4000000003": "IN_PROGRESS"},
        jobs={
            "hyenaflow-1": "Completed",
            "hyenaflow-2": "Failed",
            "other-3": "Completed",
            "hyenaflow-4": "InProgress",
        },
        handled={"hyenaflow-2", "4000000002"},
    )

    summary = reconciler.reconcile(deps, now=datetime(2026, 11, 12, tzinfo=UTC))

    assert calls == ["hyenaflow-1", "4000000001:COMPLETED"]  # training first: it frees the slot
    assert [h["item"] for h in summary["handled"]] == ["training-job hyenaflow-1", "import-job 4000000001"]
    since = deps.omics.filters[0]["createdAfter"]
    assert since == datetime(2026, 11, 9, tzinfo=UTC)  # the 72 h default lookback


def test_one_stuck_item_does_not_block_the_others_but_fails_the_run(calls: list[str]) -> None:
    deps = _deps(
        imports={"4000000001": "COMPLETED"},
        jobs={"hyenaflow-stuck": "Completed", "hyenaflow-ok": "Stopped"},
        handled=set(),
    )

    with pytest.raises(reconciler.ReconcileError, match="hyenaflow-stuck: endpoint is Updating"):
        reconciler.reconcile(deps)

    assert calls == ["hyenaflow-stuck", "hyenaflow-ok", "4000000001:COMPLETED"]
