"""Scheduled safety net: events are best-effort, so find what ended unhandled and handle it.

Everything found goes through the same functions the event handlers call; the state table's
`handled#...` markers make handling each job exactly once, whoever gets there first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from pipeline.aws_errors import is_not_found
from pipeline.dependencies import Dependencies
from pipeline.state_table import IMPORT_JOB, RUNNING, TRAINING_JOB
from pipeline.training.deployment import handle_training_job_end, sync_serving_with_endpoint
from pipeline.training.settings import ReconcileSettings
from pipeline.training.slot import (
    IMPORT_FAILED,
    IMPORT_SUCCEEDED,
    continue_activation,
    ensure_running_job,
    handle_import_status,
    omics_call,
    start_pending_follow_up,
)

logger = Logger(child=True)

TRAINING_TERMINAL = ("Completed", "Failed", "Stopped")
ReconcileDeps = Dependencies[ReconcileSettings]


class ReconcileError(RuntimeError):
    """Some items failed; the others were handled. Raised so the run counts as an error."""


def _finished_import_jobs(deps: ReconcileDeps, since: datetime) -> Iterator[tuple[str, str]]:
    for status in sorted(IMPORT_SUCCEEDED | IMPORT_FAILED):
        kwargs: dict[str, Any] = {
            "sequenceStoreId": deps.settings.sequence_store_id,
            "maxResults": 100,
            "filter": {"status": status, "createdAfter": since},
        }
        while True:
            page = omics_call(deps, "list_read_set_import_jobs", **kwargs)
            for job in page.get("importJobs", []):
                yield job["id"], job["status"]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]


def _finished_training_jobs(deps: ReconcileDeps, since: datetime) -> Iterator[str]:
    prefix = f"{deps.settings.job_name_prefix}-"
    for status in TRAINING_TERMINAL:
        kwargs: dict[str, Any] = {
            "NameContains": prefix,
            "StatusEquals": status,
            "CreationTimeAfter": since,
            "MaxResults": 100,
            "SortBy": "CreationTime",
            "SortOrder": "Ascending",
        }
        while True:
            page = deps.sagemaker.list_training_jobs(**kwargs)
            for job in page.get("TrainingJobSummaries", []):
                if (
                    job["TrainingJobName"].startswith(prefix)
                    and job.get("TrainingJobStatus", status) == status
                ):
                    yield job["TrainingJobName"]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]


def _finish_slot_job(deps: ReconcileDeps) -> dict[str, Any] | None:
    slot = deps.state.slot()
    if (
        slot.state != RUNNING
        or not slot.job_name
        or deps.state.marker(TRAINING_JOB, slot.job_name) is not None
    ):
        return None
    try:
        status = deps.sagemaker.describe_training_job(TrainingJobName=slot.job_name)["TrainingJobStatus"]
    except ClientError as err:
        if is_not_found(err):
            return None  # not created yet: ensure_running_job below takes care of it
        raise
    if status not in TRAINING_TERMINAL:
        return None
    return handle_training_job_end(deps, slot.job_name)


def reconcile(deps: ReconcileDeps, now: datetime | None = None) -> dict[str, Any]:
    settings = deps.settings
    now = now or datetime.now(UTC)
    since = now - timedelta(hours=settings.reconcile_lookback_hours)
    handled: list[dict[str, Any]] = []
    failures: list[str] = []

    def attempt(what: str, step: Callable[[], dict[str, Any] | None]) -> None:
        try:
            result = step()
            if result is not None:
                handled.append({"item": what, **result})
        except Exception as err:  # one stuck item must not block the others
            logger.exception("reconcile step failed", extra={"item": what})
            failures.append(f"{what}: {err}")

    # Training jobs first: finishing one frees the slot for whatever is waiting.
    for job_name in _finished_training_jobs(deps, since):
        if deps.state.marker(TRAINING_JOB, job_name) is None:
            attempt(f"training-job {job_name}", lambda name=job_name: handle_training_job_end(deps, name))
    # The job holding the slot, however long ago it started (spot jobs may wait days for capacity).
    attempt("slot-job", lambda: _finish_slot_job(deps))
    for job_id, status in _finished_import_jobs(deps, since):
        if deps.state.marker(IMPORT_JOB, job_id) is None:
            attempt(f"import-job {job_id}", lambda i=job_id, s=status: handle_import_status(deps, i, s))
    attempt("activation", lambda: continue_activation(deps))
    attempt(
        "running-job",
        lambda: ensure_running_job(deps, grace_seconds=settings.running_grace_seconds),
    )
    attempt("follow-up", lambda: start_pending_follow_up(deps))
    attempt("endpoint", lambda: sync_serving_with_endpoint(deps))

    summary = {"handled": handled, "failures": failures, "slot": deps.state.slot().state}
    logger.info("reconciled", extra=summary)
    if failures:
        raise ReconcileError(f"{len(failures)} reconcile step(s) failed: {'; '.join(failures)}")
    return summary
