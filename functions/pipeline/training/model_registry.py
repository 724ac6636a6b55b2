"""The SageMaker model registry: every Completed training job becomes a versioned model package.

One package per job in the stack's model package group (MODEL_PACKAGE_GROUP), holding

- the model: InferenceSpecification with the inference image, the job's model.tar.gz and the
  environment that makes the container serve the artifact's own code/;
- its figures and data lineage in CustomerMetadataProperties (botocore CustomerMetadataMap:
  1-50 entries, keys <= 128 and values <= 256 characters of letters, digits, spaces and
  `_.:/=+-@`): the training job, its data (the channel, the read sets in the store when the job
  was created, and the organisms, taxonomy ids and molecule types their tags name), the model it
  started from, candidate/baseline perplexities overall and on seen and new data, and the
  quality gate's decision, rule and reason;
- the gate's decision as ModelApprovalStatus (Approved / Rejected) with the reason as
  ApprovalDescription (set by UpdateModelPackage: CreateModelPackage has no such member).

deploy_model deploys Approved packages only (CreateModel from the package). Figures are in the
metadata rather than ModelMetrics, whose reports must be separate S3 objects (MetricsSource
S3Uri): metrics.json sits inside model.tar.gz, and the gate's figures come from the job's
metric lines, not from the artifact.

Registering is idempotent: a package is found again by its TrainingJob metadata (a replayed or
reconciled event after a crash), and CreateModelPackage carries a ClientToken derived from the
job name (two racing invocations get the same package).
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.read_set_tags import MOLECULE_TYPE_TAG, ORGANISM_TAG, TAXONOMY_ID_TAG, split
from pipeline.training.quality_gate import GateDecision

APPROVED, REJECTED = "Approved", "Rejected"
TRAINING_JOB_KEY = "TrainingJob"
METADATA_VALUE_MAX = 256
READ_SETS_SHOWN = 12  # ids in the ReadSets value; the state table's job record has them all
# What the read sets' tags say they hold (ingest writes the tags: pipeline/read_set_tags.py).
ORIGIN_KEYS = {"Organisms": ORGANISM_TAG, "TaxonomyIds": TAXONOMY_ID_TAG, "MoleculeTypes": MOLECULE_TYPE_TAG}
LISTING_SEPARATOR = " / "  # between the values of one key: `;` and `,` are not allowed there
UNKNOWN = "unknown"  # a read set whose tags could not be read
NOT_RECORDED = "not recorded"  # a read set whose tags name none (FASTA headers do not)
# What the endpoint container needs to serve the artifact: its own code/ (inference.py + hyenadna).
SERVING_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
}

# CustomerMetadataProperties keys holding the gate's figures, and the GateFigures field of each.
FIGURE_KEYS = {
    "EvalPerplexity": "candidate",
    "BaselineEvalPerplexity": "baseline",
    "SeenEvalPerplexity": "seen_candidate",
    "SeenBaselineEvalPerplexity": "seen_baseline",
    "NewEvalPerplexity": "new_candidate",
    "NewBaselineEvalPerplexity": "new_baseline",
    "BestStep": "best_step",
}


def metadata_value(value: object) -> str:
    """A value CustomerMetadataProperties accepts: other characters become spaces, cut to 256."""
    if isinstance(value, float):
        value = f"{value:.6f}"
    text = "".join(
        ch if unicodedata.category(ch)[0] in "LZN" or ch in "_.:/=+-@" else " " for ch in str(value)
    ).strip()
    return text[:METADATA_VALUE_MAX] or "none"


def client_token(job_name: str) -> str:
    """CreateModelPackage's ClientToken (1-36 characters of [a-zA-Z0-9-]): one per job."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hyenaflow/model-package/{job_name}"))


def fitted_listing(entries: list[str], more: str = "") -> str:
    """`entries` joined by LISTING_SEPARATOR, as many whole ones as fit in a metadata value with
    `+N more` for the rest and `more` (a note on what was not looked at) after them."""

    def text(shown: list[str]) -> str:
        rest = len(entries) - len(shown)
        return (
            LISTING_SEPARATOR.join(shown) + (f" +{rest} more" if rest else "") + (f" {more}" if more else "")
        )

    shown: list[str] = []
    for entry in entries:
        if len(text([*shown, entry])) <= METADATA_VALUE_MAX:
            shown.append(entry)
            continue
        if not shown:  # one entry longer than a value: the part of it that fits
            overflow = len(text([entry])) - METADATA_VALUE_MAX
            shown.append(entry[: max(len(entry) - overflow, 0)].rstrip())
        break
    return metadata_value(text(shown))


@dataclass(frozen=True)
class ReadSetOrigins:
    """What the tags of a job's read sets say they hold (read_set_origins.py looks them up)."""

    tags: tuple[dict[str, str] | None, ...]  # one per read set looked up; None: its lookup failed
    not_looked_up: int = 0  # read sets past the lookup cap

    def listing(self, tag: str) -> str:
        """The distinct values of `tag` in order of first appearance, then `not recorded` (a read
        set without the tag) and `unknown` (a lookup that failed), when there are such."""
        values = [metadata_value(v) for tags in self.tags if tags for v in split(tag, tags.get(tag))]
        entries = list(dict.fromkeys(values))
        if any(tags is not None and not split(tag, tags.get(tag)) for tags in self.tags):
            entries.append(NOT_RECORDED)
        if any(tags is None for tags in self.tags):
            entries.append(UNKNOWN)
        if not entries and not self.not_looked_up:
            return "none"  # the job had no read sets
        more = f"+{self.not_looked_up} read sets not looked up" if self.not_looked_up else ""
        return fitted_listing(entries, more)

    def metadata(self) -> dict[str, str]:
        return {key: self.listing(tag) for key, tag in ORIGIN_KEYS.items()}


@dataclass(frozen=True)
class DataLineage:
    """What a job trained on and started from."""

    training_data: str  # the train channel's S3 URI (the sequence store's access point)
    read_set_ids: list[str] | None  # in the store when the job was created; None: not recorded
    warm_start_from: str | None  # the model.tar.gz it started from; None: a cold start
    trigger: str | None = None
    origins: ReadSetOrigins | None = None  # None: not looked up

    @classmethod
    def of(
        cls,
        training_job: dict[str, Any],
        job_record: dict[str, Any] | None,
        origins: ReadSetOrigins | None = None,
    ) -> DataLineage:
        """From DescribeTrainingJob and start_training's record of the job (state table)."""
        channels = training_job.get("InputDataConfig") or [{}]
        source = (channels[0].get("DataSource") or {}).get("S3DataSource") or {}
        record = job_record or {}
        return cls(
            training_data=source.get("S3Uri", "unknown"),
            read_set_ids=record.get("read_set_ids"),
            warm_start_from=(training_job.get("HyperParameters") or {}).get("init_from"),
            trigger=record.get("trigger"),
            origins=origins,
        )

    def metadata(self) -> dict[str, str]:
        ids = self.read_set_ids
        shown = "unknown" if ids is None else " ".join(ids[:READ_SETS_SHOWN]) or "none"
        if ids is not None and len(ids) > READ_SETS_SHOWN:
            shown += f" +{len(ids) - READ_SETS_SHOWN} more"
        values = {
            "TrainingData": self.training_data,
            "ReadSets": shown,
            "ReadSetCount": "unknown" if ids is None else len(ids),
            "WarmStartFrom": self.warm_start_from or "none: a cold start",
        }
        if self.trigger:
            values["Trigger"] = self.trigger
        values |= self.origins.metadata() if self.origins else dict.fromkeys(ORIGIN_KEYS, UNKNOWN)
        return {key: metadata_value(value) for key, value in values.items()}


@dataclass(frozen=True)
class RegisteredModel:
    """A job's model package as DescribeModelPackage shows it."""

    arn: str
    version: int | None
    approval_status: str | None
    approval_description: str | None
    metadata: dict[str, str]
    model_data_url: str | None

    @property
    def approved(self) -> bool:
        return self.approval_status == APPROVED

    @classmethod
    def from_description(cls, described: dict[str, Any]) -> RegisteredModel:
        containers = (described.get("InferenceSpecification") or {}).get("Containers") or [{}]
        return cls(
            arn=described["ModelPackageArn"],
            version=described.get("ModelPackageVersion"),
            approval_status=described.get("ModelApprovalStatus"),
            approval_description=described.get("ApprovalDescription"),
            metadata=dict(described.get("CustomerMetadataProperties") or {}),
            model_data_url=containers[0].get("ModelDataUrl"),
        )

    def gate_record(self) -> dict[str, Any]:
        """The gate's decision as its metadata recorded it (same keys as GateDecision.record())."""
        record: dict[str, Any] = {
            "decision": self.metadata.get("GateDecision", self.approval_status),
            "check": self.metadata.get("GateCheck"),
            "reason": self.approval_description or self.metadata.get("GateReason"),
        }
        for key, field in FIGURE_KEYS.items():
            record[field] = _number(self.metadata.get(key))
        if record["best_step"] is not None:
            record["best_step"] = int(record["best_step"])
        record["margin"] = _number(self.metadata.get("QualityGateMargin"))
        record["forgetting_tolerance"] = _number(self.metadata.get("ForgettingTolerance"))
        return record


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def package_metadata(job_name: str, decision: GateDecision, lineage: DataLineage) -> dict[str, str]:
    figures = {key: getattr(decision.figures, field) for key, field in FIGURE_KEYS.items()}
    values: dict[str, object] = {
        TRAINING_JOB_KEY: job_name,
        **{key: value for key, value in figures.items() if value is not None},
        "GateDecision": decision.approval_status,
        "GateCheck": decision.check,
        "GateReason": decision.reason,
        "QualityGateMargin": decision.margin,
        "ForgettingTolerance": decision.forgetting_tolerance,
    }
    return {**lineage.metadata(), **{key: metadata_value(value) for key, value in values.items()}}


def find_registered(
    sagemaker: Any, group: str, job_name: str, job_created: datetime | None
) -> RegisteredModel | None:
    """The package already registered for `job_name`, if any. Only packages created after the
    job are looked at (newest first): at most one per job trained since."""
    for summary in model_package_summaries(sagemaker, group, newest_first=True):
        if job_created is not None and summary["CreationTime"] < job_created:
            return None
        described = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if (described.get("CustomerMetadataProperties") or {}).get(TRAINING_JOB_KEY) == job_name:
            return RegisteredModel.from_description(described)
    return None


def model_package_summaries(sagemaker: Any, group: str, *, newest_first: bool) -> Iterator[dict[str, Any]]:
    """ListModelPackages of `group` by creation time, page after page (read lazily: a caller that
    stops early lists no further page)."""
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "SortBy": "CreationTime",
        "SortOrder": "Descending" if newest_first else "Ascending",
        "MaxResults": 100,
    }
    while True:
        page = sagemaker.list_model_packages(**kwargs)
        yield from page.get("ModelPackageSummaryList", [])
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def register(
    sagemaker: Any,
    *,
    group: str,
    training_job: dict[str, Any],
    decision: GateDecision,
    lineage: DataLineage,
    inference_image_uri: str,
    endpoint_instance_type: str,
) -> RegisteredModel:
    """CreateModelPackage with the gate's decision, then its reason as ApprovalDescription."""
    job_name = training_job["TrainingJobName"]
    created = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=f"HyenaDNA model trained by SageMaker training job {job_name}",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": inference_image_uri,
                    "ModelDataUrl": training_job["ModelArtifacts"]["S3ModelArtifacts"],
                    "Environment": SERVING_ENVIRONMENT,
                }
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
            "SupportedRealtimeInferenceInstanceTypes": [endpoint_instance_type],
        },
        ModelApprovalStatus=decision.approval_status,
        CustomerMetadataProperties=package_metadata(job_name, decision, lineage),
        ClientToken=client_token(job_name),
    )
    registered = RegisteredModel.from_description(
        sagemaker.describe_model_package(ModelPackageName=created["ModelPackageArn"])
    )
    return describe_decision(sagemaker, registered, decision.reason)


def describe_decision(
    sagemaker: Any, registered: RegisteredModel, reason: str | None = None
) -> RegisteredModel:
    """Set the ApprovalDescription if it is missing (also completes a registration cut short)."""
    if registered.approval_description:
        return registered
    status = registered.metadata.get("GateDecision") or registered.approval_status or REJECTED
    sagemaker.update_model_package(
        ModelPackageArn=registered.arn,
        ModelApprovalStatus=status,
        ApprovalDescription=(reason or registered.metadata.get("GateReason") or "")[:1024],
    )
    return RegisteredModel.from_description(sagemaker.describe_model_package(ModelPackageName=registered.arn))


def reject_rolled_back(sagemaker: Any, package_arn: str, reason: str) -> None:
    """A deployed model the endpoint rolled back (alarms) is no longer fit to deploy."""
    sagemaker.update_model_package(
        ModelPackageArn=package_arn, ModelApprovalStatus=REJECTED, ApprovalDescription=reason[:1024]
    )
