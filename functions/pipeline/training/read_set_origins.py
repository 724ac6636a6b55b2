"""What a job's read sets hold, from their tags: the organisms, taxonomy ids and molecule types
ingest recorded (docs/contracts.md, "Read-set metadata"), for the model registry.

Cheap and fail-soft, because it only describes a model and must never keep one from being
registered: one GetSequenceStore (the store's ARN) and one ListTagsForResource per read set, the
first ORIGIN_LOOKUPS of them, each through the HealthOmics rate limiter (OMICS_TPS). A read set
that is gone is `unknown`; any other AWS error (permission, throttling past the retries, the
service unreachable: botocore's ClientError and BotoCoreError) is logged and leaves it and every read set after it `unknown`:
the same cause would fail them too, and a retried throttle costs seconds of the function's time.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import is_not_found
from pipeline.training.model_registry import ReadSetOrigins
from pipeline.training.slot import TrainingDeps, omics_call

logger = Logger(child=True)

ORIGIN_LOOKUPS = 20  # ListTagsForResource calls per registered model: ~5 s at OMICS_TPS=4


def read_set_arn(store_arn: str, read_set_id: str) -> str:
    # The readSet resource type of the Service Authorization Reference (list_awshealthomics):
    # arn:${Partition}:omics:${Region}:${Account}:sequenceStore/${SequenceStoreId}/readSet/${ReadSetId}
    return f"{store_arn}/readSet/{read_set_id}"


def look_up_origins(deps: TrainingDeps, read_set_ids: list[str] | None) -> ReadSetOrigins | None:
    """The tags of the first ORIGIN_LOOKUPS read sets; None when the job's read sets are not known
    (no lineage recorded: nothing to look up)."""
    if read_set_ids is None:
        return None
    looked_up = read_set_ids[:ORIGIN_LOOKUPS]
    tags: list[dict[str, str] | None] = []
    try:
        store_arn = omics_call(deps, "get_sequence_store", id=deps.settings.sequence_store_id)["arn"]
        for read_set_id in looked_up:
            tags.append(_tags(deps, read_set_arn(store_arn, read_set_id)))
    except (ClientError, BotoCoreError) as err:  # fail-soft by design (module docstring); a bug still raises
        logger.warning(
            "could not read the read sets' tags; the model package records their origins as unknown",
            extra={"error": str(err), "read_sets_unknown": len(looked_up) - len(tags)},
        )
        tags += [None] * (len(looked_up) - len(tags))
    return ReadSetOrigins(tuple(tags), not_looked_up=len(read_set_ids) - len(looked_up))


def _tags(deps: TrainingDeps, arn: str) -> dict[str, str] | None:
    try:
        return omics_call(deps, "list_tags_for_resource", resourceArn=arn)["tags"]
    except ClientError as err:
        if not is_not_found(err):
            raise
        logger.warning("a read set of the job is gone; its origin is unknown", extra={"read_set": arn})
        return None
