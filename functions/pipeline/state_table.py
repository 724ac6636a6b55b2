"""The state table: every read and write of the pipeline's DynamoDB table (keys `pk`/`sk`).

Items of the training pipeline (`PipelineState`):
- `pipeline / training-slot`: at most one training job in flight. `state` is `idle`,
  `activating` (archived read sets are being reactivated before the job can read them) or
  `running` (`job_name`). New data while the slot is busy sets `pending` (with the first
  waiting trigger in `pending_trigger`): however many imports arrive, one follow-up job runs.
- `pipeline / serving-model`: what the endpoint serves and its eval perplexity (the quality
  gate's reference), plus the previous one.
- `handled#<kind> / <id>`: an import job or training job whose end has been handled. Written in
  the same transaction as the slot change it causes, so a replayed or reconciled event sees it.

Every transition is a conditional write: two Lambdas racing on the same slot cannot both win.

Items of the GenBank poller (`GenbankPollState`):
- `genbank#poll / query#<hash of db+query>`: `window_end`, the end of the last modification-date
  window that was fetched completely.
- `genbank#accession#<accession.version> / ingested`: this version is in a complete S3 object
  (`s3_key`, one poll run's FASTA).

Powertools idempotency keeps its own `idempotency#<function>` items in the same table.
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from pipeline.aws_errors import error_code

_SLOT_KEY = {"pk": "pipeline", "sk": "training-slot"}
_SERVING_KEY = {"pk": "pipeline", "sk": "serving-model"}
GENBANK_POLL_PK = "genbank#poll"

IDLE, ACTIVATING, RUNNING = "idle", "activating", "running"
IMPORT_JOB, TRAINING_JOB, ACTIVATION_JOB = "omics-import", "training-job", "activation-job"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _plain_to_dynamo(value: Any) -> Any:
    # DynamoDB numbers are Decimals; boto3 refuses floats to avoid silent rounding.
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _plain_to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain_to_dynamo(v) for v in value]
    return value


def _dynamo_to_plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _dynamo_to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dynamo_to_plain(v) for v in value]
    return value


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_plain_to_dynamo(v)) for k, v in values.items() if v is not None}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _dynamo_to_plain(_deserializer.deserialize(v)) for k, v in item.items()}


class Claim(enum.Enum):
    CLAIMED = "claimed"  # the slot is ours: start the job / activation
    PENDING = "pending"  # a job is in flight: recorded as the (coalesced) follow-up
    ALREADY_HANDLED = "already-handled"  # replay: the marker was written before
    BUSY = "busy"  # someone else holds the slot (no marker involved)


@dataclass(frozen=True)
class Slot:
    state: str = IDLE
    job_name: str | None = None
    trigger: str | None = None
    pending: bool = False
    pending_trigger: str | None = None
    activation_job_ids: list[str] = field(default_factory=list)
    activation_failures: int = 0  # part of the activation client token, so a retry is a new job
    updated_at: int = 0

    @classmethod
    def from_item(cls, values: dict[str, Any]) -> Slot:
        return cls(
            state=values.get("state", IDLE),
            job_name=values.get("job_name"),
            trigger=values.get("trigger"),
            pending=bool(values.get("pending", False)),
            pending_trigger=values.get("pending_trigger"),
            activation_job_ids=list(values.get("activation_job_ids", [])),
            activation_failures=int(values.get("activation_failures", 0)),
            updated_at=int(values.get("updated_at", 0)),
        )


class PipelineState:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._ddb = dynamodb
        self._table = table_name

    # -- reads ---------------------------------------------------------------------------
    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        response = self._ddb.get_item(TableName=self._table, Key=_to_item(key), ConsistentRead=True)
        return _from_item(response["Item"]) if "Item" in response else None

    def slot(self) -> Slot:
        return Slot.from_item(self._get(_SLOT_KEY) or {})

    def serving_model(self) -> dict[str, Any] | None:
        return self._get(_SERVING_KEY)

    def marker(self, kind: str, ident: str) -> dict[str, Any] | None:
        return self._get({"pk": f"handled#{kind}", "sk": ident})

    # -- writes --------------------------------------------------------------------------
    def _marker_put(self, kind: str, ident: str, details: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": _to_item(
                    {"pk": f"handled#{kind}", "sk": ident, "handled_at": int(time.time()), **details}
                ),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """True when the transaction applied, False when a condition failed."""
        try:
            self._ddb.transact_write_items(TransactItems=items)
            return True
        except ClientError as err:
            if error_code(err) in {"TransactionCanceledException", "ConditionalCheckFailedException"}:
                return False
            raise

    def put_marker(self, kind: str, ident: str, details: dict[str, Any] | None = None) -> bool:
        """Record `ident` as handled; False if it already was."""
        return self._transact([self._marker_put(kind, ident, details or {})])

    def delete_marker(self, kind: str, ident: str) -> None:
        self._ddb.delete_item(TableName=self._table, Key=_to_item({"pk": f"handled#{kind}", "sk": ident}))

    def claim(
        self,
        *,
        trigger: str,
        state: str,
        job_name: str | None,
        marker: tuple[str, str, dict[str, Any]] | None = None,
        from_pending: bool = False,
    ) -> Claim:
        """Take the idle slot for `trigger` (state `running` with `job_name`, or `activating`).

        Taking it consumes any pending follow-up: the new job reads every read set anyway.
        `from_pending` claims only if a follow-up is actually waiting (reconciler, deploy_model).
        """
        condition = (
            "#state = :idle AND pending = :true"
            if from_pending
            else "attribute_not_exists(pk) OR #state = :idle"
        )
        values: dict[str, Any] = {
            ":idle": IDLE,
            ":state": state,
            ":trigger": trigger,
            ":now": int(time.time()),
            ":none": [],
        }
        if from_pending:
            values[":true"] = True
        update = "SET #state = :state, #trigger = :trigger, updated_at = :now, activation_job_ids = :none"
        if job_name:
            update += ", job_name = :job"
            values[":job"] = job_name
        update += " REMOVE pending, pending_trigger" + ("" if job_name else ", job_name")
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _to_item(_SLOT_KEY),
                    "UpdateExpression": update,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#state": "state", "#trigger": "trigger"},
                    "ExpressionAttributeValues": _to_item(values),
                }
            }
        ]
        if marker:
            items.append(self._marker_put(*marker))
        if self._transact(items):
            return Claim.CLAIMED
        if marker and self.marker(marker[0], marker[1]) is not None:
            return Claim.ALREADY_HANDLED
        return Claim.BUSY

    def mark_pending(self, *, trigger: str, marker: tuple[str, str, dict[str, Any]]) -> Claim:
        """Record a follow-up while a job or activation holds the slot (BUSY if the slot is idle)."""
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _to_item(_SLOT_KEY),
                    "UpdateExpression": "SET pending = :true, pending_trigger = if_not_exists(pending_trigger, :trigger)",
                    "ConditionExpression": "#state IN (:running, :activating)",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": _to_item(
                        {":true": True, ":trigger": trigger, ":running": RUNNING, ":activating": ACTIVATING}
                    ),
                }
            },
            self._marker_put(*marker),
        ]
        if self._transact(items):
            return Claim.PENDING
        if self.marker(marker[0], marker[1]) is not None:
            return Claim.ALREADY_HANDLED
        return Claim.BUSY

    def activation_done(self, *, trigger: str, job_name: str) -> bool:
        """`activating` -> `running` for the same trigger (False if someone else moved it)."""
        return self._update_slot(
            "SET #state = :running, job_name = :job, updated_at = :now",
            "#state = :activating AND #trigger = :trigger",
            {":running": RUNNING, ":job": job_name, ":activating": ACTIVATING, ":trigger": trigger},
        )

    def record_activation_jobs(self, *, trigger: str, job_ids: list[str]) -> bool:
        return self._update_slot(
            "SET activation_job_ids = :ids, updated_at = :now",
            "#state = :activating AND #trigger = :trigger",
            {":ids": job_ids, ":activating": ACTIVATING, ":trigger": trigger},
        )

    def abandon_activation(self, *, trigger: str) -> bool:
        """Activation failed: free the slot but keep the trigger pending, so it is retried."""
        return self._update_slot(
            "SET #state = :idle, pending = :true, pending_trigger = :trigger, updated_at = :now "
            "ADD activation_failures :one REMOVE job_name",
            "#state = :activating AND #trigger = :trigger",
            {":idle": IDLE, ":true": True, ":activating": ACTIVATING, ":trigger": trigger, ":one": 1},
        )

    def release(self, *, job_name: str, marker: tuple[str, str, dict[str, Any]]) -> Claim:
        """A job ended: free the slot if it was this job's, and mark the job handled.

        CLAIMED means the slot was released, BUSY that the job did not hold the slot (an old
        or foreign job; only the marker is written), ALREADY_HANDLED a replay.
        """
        slot_update = {
            "Update": {
                "TableName": self._table,
                "Key": _to_item(_SLOT_KEY),
                "UpdateExpression": "SET #state = :idle, updated_at = :now REMOVE job_name",
                "ConditionExpression": "#state = :running AND job_name = :job",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": _to_item(
                    {":idle": IDLE, ":running": RUNNING, ":job": job_name, ":now": int(time.time())}
                ),
            }
        }
        if self._transact([slot_update, self._marker_put(*marker)]):
            return Claim.CLAIMED
        if self.put_marker(*marker):
            return Claim.BUSY
        return Claim.ALREADY_HANDLED

    def set_serving_model(self, record: dict[str, Any]) -> None:
        """Make `record` the serving model, keeping the one it replaces as `previous`."""
        current = self.serving_model()
        previous = None
        if current and current.get("model_name") == record.get("model_name"):
            previous = current.get("previous")  # a repeated deploy of the same model keeps its history
        elif current:
            previous = {k: v for k, v in current.items() if k not in ("pk", "sk", "previous")}
        item = {**_SERVING_KEY, **record, "updated_at": int(time.time())}
        if previous:
            item["previous"] = previous
        self._ddb.put_item(TableName=self._table, Item=_to_item(item))

    def restore_previous_serving_model(self, *, expected_model: str) -> bool:
        """The endpoint went back to the previous model (blue/green rollback): say so here too."""
        current = self.serving_model()
        if not current or current.get("model_name") != expected_model or not current.get("previous"):
            return False
        item = {**_SERVING_KEY, **current["previous"], "updated_at": int(time.time())}
        item["rolled_back_from"] = expected_model
        self._ddb.put_item(TableName=self._table, Item=_to_item(item))
        return True

    def _update_slot(self, update: str, condition: str, values: dict[str, Any]) -> bool:
        names = {
            k: v for k, v in {"#state": "state", "#trigger": "trigger"}.items() if k in update + condition
        }
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_to_item(_SLOT_KEY),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_item({**values, ":now": int(time.time())}),
            )
            return True
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return False
            raise


class GenbankPollState:
    """The GenBank poller's items: its date window per query, and the versions already in S3."""

    def __init__(self, dynamodb: Any, table_name: str, *, db: str, query: str) -> None:
        self._ddb, self._table = dynamodb, table_name
        digest = hashlib.sha256(f"{db}\n{query}".encode()).hexdigest()[:16]
        self._poll_key = {"pk": GENBANK_POLL_PK, "sk": f"query#{digest}"}
        self._query = query

    def window_end(self) -> datetime | None:
        response = self._ddb.get_item(
            TableName=self._table, Key=_to_item(self._poll_key), ConsistentRead=True
        )
        return (
            datetime.fromisoformat(_from_item(response["Item"])["window_end"]) if "Item" in response else None
        )

    def record_window_end(self, end: datetime, written: int) -> None:
        item = {
            **self._poll_key,
            "window_end": end.isoformat(),
            "query": self._query,
            "records_written": written,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._ddb.put_item(TableName=self._table, Item=_to_item(item))

    def is_seen(self, accession: str) -> bool:
        response = self._ddb.get_item(
            TableName=self._table,
            Key=_to_item(self._seen_key(accession)),
            ProjectionExpression="pk",
            ConsistentRead=True,
        )
        return "Item" in response

    def mark_seen(self, accessions: Sequence[str], key: str) -> None:
        """Every accession.version in `accessions` is in the S3 object `key` (25 per BatchWriteItem)."""
        ingested_at = datetime.now(UTC).isoformat(timespec="seconds")
        items = [
            {**self._seen_key(accession), "s3_key": key, "ingested_at": ingested_at}
            for accession in dict.fromkeys(accessions)  # DynamoDB refuses a key twice in one batch
        ]
        requests = [{"PutRequest": {"Item": _to_item(item)}} for item in items]
        for start in range(0, len(requests), 25):
            pending = {self._table: requests[start : start + 25]}
            for attempt in range(8):
                pending = self._ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt))  # throttled items come back unprocessed
            else:
                left = len(pending[self._table])
                raise RuntimeError(f"DynamoDB left {left} seen-items unwritten after retries")

    @staticmethod
    def _seen_key(accession: str) -> dict[str, str]:
        return {"pk": f"genbank#accession#{accession}", "sk": "ingested"}
