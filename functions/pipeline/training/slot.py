"""Start (at most one) SageMaker training job over the sequence store's read sets.

One code path serves the omics event handler, the deploy_model follow-up and the reconciler:
`request_training` (new data), `start_pending_follow_up` (a job ended with data waiting),
`continue_activation` and `ensure_running_job` (the reconciler's re-checks).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from pipeline.aws_errors import is_already_exists, is_not_found
from pipeline.dependencies import Dependencies
from pipeline.rate_limiter import process_rate_limiter
from pipeline.state_table import ACTIVATING, ACTIVATION_JOB, IDLE, IMPORT_JOB, RUNNING, Claim
from pipeline.training.instance_gpus import training_launch
from pipeline.training.job_request import build_training_request
from pipeline.training.sagemaker_names import sagemaker_name
from pipeline.training.settings import TrainingSettings

logger = Logger(child=True)

IMPORT_SUCCEEDED = {"COMPLETED", "COMPLETED_WITH_FAILURES"}
IMPORT_FAILED = {"FAILED", "CANCELLED"}
ACTIVATION_BATCH = 20  # StartReadSetActivationJob takes at most 20 read sets


# deploy_model and reconcile call these with their own Dependencies: their settings extend
# TrainingSettings.
TrainingDeps = Dependencies[TrainingSettings]


def omics_call(deps: TrainingDeps, operation: str, **kwargs: Any) -> dict[str, Any]:
    process_rate_limiter("omics", deps.settings.omics_tps).wait()
    return getattr(deps.omics, operation)(**kwargs)


def training_job_name(settings: TrainingSettings, trigger: str) -> str:
    return sagemaker_name(settings.job_name_prefix, trigger)


# -- omics import events -----------------------------------------------------------------
def handle_import_status(deps: TrainingDeps, import_job_id: str, status: str) -> dict[str, Any]:
    """React to one import job's status: train on success, alert on failure, ignore the rest."""
    if status in IMPORT_FAILED:
        return report_import_failure(deps, import_job_id, status)
    if status not in IMPORT_SUCCEEDED:
        return {"outcome": "ignored", "import_job_id": import_job_id, "status": status}
    _raise_unless_import_ended(deps, import_job_id, status)
    result = request_training(
        deps, trigger=import_job_id, marker=(IMPORT_JOB, import_job_id, {"status": status})
    )
    if status == "COMPLETED_WITH_FAILURES" and result["outcome"] != "already-handled":
        _alert_failed_sources(
            deps, import_job_id, status, note="the read sets that did import are used for training"
        )
    return result


def _raise_unless_import_ended(deps: TrainingDeps, import_job_id: str, status: str) -> None:
    """An event may come early or out of order; GetReadSetImportJob is the truth. Training before
    the job has ended would read a store without its read sets, and mark them handled."""
    job = omics_call(
        deps, "get_read_set_import_job", id=import_job_id, sequenceStoreId=deps.settings.sequence_store_id
    )
    if job["status"] not in IMPORT_SUCCEEDED | IMPORT_FAILED:
        # Raised, never returned: a cached "not yet" would swallow the event's retries.
        raise RuntimeError(
            f"import job {import_job_id} is {job['status']} according to GetReadSetImportJob although "
            f"its event says {status}; Lambda retries the event, and the reconciler finds the job ended"
        )


def failed_sources(deps: TrainingDeps, import_job_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    job = omics_call(
        deps, "get_read_set_import_job", id=import_job_id, sequenceStoreId=deps.settings.sequence_store_id
    )
    errors = [
        {
            "name": source.get("name"),
            "sampleId": source.get("sampleId"),
            "sourceFiles": source.get("sourceFiles"),
            "status": source.get("status"),
            "statusMessage": source.get("statusMessage"),
        }
        for source in job.get("sources", [])
        if source.get("status") != "FINISHED"
    ]
    return job, errors


def _alert_failed_sources(deps: TrainingDeps, import_job_id: str, status: str, note: str) -> None:
    job, errors = failed_sources(deps, import_job_id)
    deps.alert(
        f"hyenaflow: HealthOmics import {import_job_id} {status}",
        {
            "importJobId": import_job_id,
            "sequenceStoreId": deps.settings.sequence_store_id,
            "status": status,
            "statusMessage": job.get("statusMessage"),
            "failedSources": errors,
            "whatNext": note,
        },
    )


def report_import_failure(deps: TrainingDeps, import_job_id: str, status: str) -> dict[str, Any]:
    if not deps.state.put_marker(IMPORT_JOB, import_job_id, {"status": status}):
        return {"outcome": "already-handled", "import_job_id": import_job_id}
    try:
        _alert_failed_sources(
            deps,
            import_job_id,
            status,
            note="fix the source files listed (staged/ in the data bucket) and upload the FASTA again",
        )
    except Exception:
        deps.state.delete_marker(IMPORT_JOB, import_job_id)  # let the retry alert again
        raise
    return {"outcome": "alerted", "import_job_id": import_job_id, "status": status}


# -- the training slot -------------------------------------------------------------------
def request_training(
    deps: TrainingDeps, *, trigger: str, marker: tuple[str, str, dict[str, Any]]
) -> dict[str, Any]:
    """New data arrived: start a job now, or coalesce into the one follow-up if a job runs."""
    job_name = training_job_name(deps.settings, trigger)
    for _ in range(5):
        archived = archived_read_sets(deps)
        state = ACTIVATING if archived else RUNNING
        claim = deps.state.claim(
            trigger=trigger, state=state, job_name=None if archived else job_name, marker=marker
        )
        if claim is Claim.CLAIMED:
            return _begin(deps, trigger, job_name, archived)
        if claim is Claim.ALREADY_HANDLED:
            ensure_running_job(deps, grace_seconds=0, only_trigger=trigger)
            return {"outcome": "already-handled", "trigger": trigger}
        claim = deps.state.mark_pending(trigger=trigger, marker=marker)
        if claim is Claim.PENDING:
            slot = deps.state.slot()
            logger.info(
                "training busy: coalesced into the follow-up",
                extra={"running": slot.job_name, "trigger": trigger},
            )
            return {
                "outcome": "coalesced",
                "trigger": trigger,
                "running_job": slot.job_name,
                "slot": slot.state,
            }
        if claim is Claim.ALREADY_HANDLED:
            return {"outcome": "already-handled", "trigger": trigger}
        # The slot went idle between the two conditional writes: try to claim it again.
    raise RuntimeError(
        f"training slot kept changing while handling trigger {trigger}; the event will be retried"
    )


def start_pending_follow_up(deps: TrainingDeps) -> dict[str, Any] | None:
    """If the slot is idle with data waiting, start the single follow-up job."""
    slot = deps.state.slot()
    if slot.state != IDLE or not slot.pending or not slot.pending_trigger:
        return None
    trigger = slot.pending_trigger
    job_name = training_job_name(deps.settings, trigger)
    archived = archived_read_sets(deps)
    state = ACTIVATING if archived else RUNNING
    claim = deps.state.claim(
        trigger=trigger, state=state, job_name=None if archived else job_name, from_pending=True
    )
    if claim is not Claim.CLAIMED:
        return None
    result = _begin(deps, trigger, job_name, archived)
    return {**result, "follow_up": True}


def _begin(deps: TrainingDeps, trigger: str, job_name: str, archived: list[str]) -> dict[str, Any]:
    if archived:
        job_ids = start_activation(deps, trigger, archived)
        deps.state.record_activation_jobs(trigger=trigger, job_ids=job_ids)
        return {
            "outcome": "activating",
            "trigger": trigger,
            "activation_job_ids": job_ids,
            "read_sets": len(archived),
        }
    create_training_job(deps, job_name, trigger)
    return {"outcome": "started", "trigger": trigger, "training_job": job_name}


# -- archived read sets ------------------------------------------------------------------
def _read_set_ids(deps: TrainingDeps, status: str) -> list[str]:
    ids: list[str] = []
    kwargs: dict[str, Any] = {
        "sequenceStoreId": deps.settings.sequence_store_id,
        "maxResults": 100,
        "filter": {"status": status},
    }
    while True:
        page = omics_call(deps, "list_read_sets", **kwargs)
        ids += [item["id"] for item in page.get("readSets", [])]
        if not page.get("nextToken"):
            return ids
        kwargs["nextToken"] = page["nextToken"]


def archived_read_sets(deps: TrainingDeps) -> list[str]:
    """Read sets HealthOmics archived (unread for 30 days): unreadable until reactivated."""
    return _read_set_ids(deps, "ARCHIVED")


def start_activation(deps: TrainingDeps, trigger: str, read_set_ids: list[str]) -> list[str]:
    # Same trigger + read sets + attempt -> same token -> HealthOmics returns the same job when a
    # Lambda retry repeats the call; after a failed activation the attempt number changes.
    attempt = deps.state.slot().activation_failures
    job_ids = []
    for start in range(0, len(read_set_ids), ACTIVATION_BATCH):
        batch = read_set_ids[start : start + ACTIVATION_BATCH]
        token = hashlib.sha256(f"{trigger}:{attempt}:{','.join(batch)}".encode()).hexdigest()[:64]
        response = omics_call(
            deps,
            "start_read_set_activation_job",
            sequenceStoreId=deps.settings.sequence_store_id,
            clientToken=token,
            sources=[{"readSetId": read_set_id} for read_set_id in batch],
        )
        job_ids.append(response["id"])
    logger.info(
        "reactivating archived read sets before training",
        extra={"read_sets": len(read_set_ids), "jobs": job_ids},
    )
    return job_ids


def continue_activation(deps: TrainingDeps) -> dict[str, Any] | None:
    """Reconciler step: once no read set is archived or activating, start the waiting job."""
    slot = deps.state.slot()
    if slot.state != ACTIVATING or not slot.trigger:
        return None
    trigger = slot.trigger
    for job_id in slot.activation_job_ids:
        job = omics_call(
            deps, "get_read_set_activation_job", id=job_id, sequenceStoreId=deps.settings.sequence_store_id
        )
        if job["status"] in {"FAILED", "CANCELLED", "COMPLETED_WITH_FAILURES"}:
            if deps.state.put_marker(ACTIVATION_JOB, job_id, {"status": job["status"]}):
                deps.alert(
                    f"hyenaflow: read set activation {job_id} {job['status']}",
                    {
                        "activationJobId": job_id,
                        "statusMessage": job.get("statusMessage"),
                        "failedSources": [s for s in job.get("sources", []) if s.get("status") != "FINISHED"],
                        "whatNext": "training waits; the reconciler retries the activation on its next runs",
                    },
                )
            deps.state.abandon_activation(trigger=trigger)
            return {"outcome": "activation-failed", "activation_job_id": job_id}
    if _read_set_ids(deps, "ACTIVATING"):
        return {"outcome": "still-activating", "trigger": trigger}
    archived = archived_read_sets(deps)
    if archived:
        # Claimed but the activation never started (crash), or more read sets archived since.
        job_ids = start_activation(deps, trigger, archived)
        deps.state.record_activation_jobs(trigger=trigger, job_ids=job_ids)
        return {"outcome": "activating", "trigger": trigger, "activation_job_ids": job_ids}
    job_name = training_job_name(deps.settings, trigger)
    if not deps.state.activation_done(trigger=trigger, job_name=job_name):
        return None
    create_training_job(deps, job_name, trigger)
    return {"outcome": "started", "trigger": trigger, "training_job": job_name}


# -- the SageMaker job -------------------------------------------------------------------
def training_job_exists(deps: TrainingDeps, job_name: str) -> bool:
    try:
        deps.sagemaker.describe_training_job(TrainingJobName=job_name)
        return True
    except ClientError as err:
        if is_not_found(err):
            return False
        raise


def ensure_running_job(
    deps: TrainingDeps, *, grace_seconds: int, only_trigger: str | None = None
) -> dict[str, Any] | None:
    """The slot says `running` but the job was never created (crash between claim and create)."""
    slot = deps.state.slot()
    if slot.state != RUNNING or not slot.job_name or not slot.trigger:
        return None
    if only_trigger is not None and slot.trigger != only_trigger:
        return None
    if time.time() - slot.updated_at < grace_seconds or training_job_exists(deps, slot.job_name):
        return None
    create_training_job(deps, slot.job_name, slot.trigger)
    return {"outcome": "started", "trigger": slot.trigger, "training_job": slot.job_name, "recovered": True}


def create_training_job(deps: TrainingDeps, job_name: str, trigger: str) -> None:
    store = omics_call(deps, "get_sequence_store", id=deps.settings.sequence_store_id)
    read_sets_uri = store["s3Access"]["s3Uri"]  # the store's access point; never built by hand
    serving = deps.state.serving_model()
    request = build_training_request(
        deps.settings,
        job_name=job_name,
        trigger=trigger,
        read_sets_s3_uri=read_sets_uri,
        warm_start_model_uri=(serving or {}).get("model_data_url"),
        region=deps.settings.aws_region,
    )
    launch = training_launch(deps.settings.training_instance_type, deps.settings.training_instance_count)
    if launch.note:
        logger.warning(launch.note, extra={"training_job": job_name})
    # Data lineage for the model registry: the read sets the job's channel holds as it starts.
    read_set_ids = _read_set_ids(deps, "ACTIVE")
    try:
        deps.sagemaker.create_training_job(**request)
    except ClientError as err:
        if not is_already_exists(err):
            raise
        logger.info("training job already exists (replay)", extra={"training_job": job_name})
        return
    deps.state.record_training_job(
        job_name,
        {
            "trigger": trigger,
            "read_set_ids": read_set_ids,
            "training_data": read_sets_uri,
            "init_from": request["HyperParameters"].get("init_from"),
        },
    )
    logger.info(
        "training job created",
        extra={"training_job": job_name, "warm_start": bool(serving), "read_sets": len(read_set_ids)},
    )
