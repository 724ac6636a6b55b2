"""The events the emulated services send (aws.omics, aws.sagemaker), on moto's EventBridge.

moto's `put_events` matches every rule of the default bus and delivers to SQS queue, log group,
archive and cross-bus targets (Lambda targets raise NotImplementedError in moto 5.2.5), so rules
created from template.yaml with SQS targets see these events as AWS would send them.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)


class EventBus:
    """Puts service events on moto's default bus; `history` keeps each, in order, as the full
    envelope a rule target receives (`detail-type`, `detail`, ...)."""

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def put(
        self,
        account_id: str,
        region: str,
        source: str,
        detail_type: str,
        detail: dict[str, Any],
        resources: list[str],
    ) -> dict[str, Any]:
        from moto.events.models import events_backends

        time = datetime.now(UTC).replace(microsecond=0)
        entry = {
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, default=_json_default),
            "Resources": resources,
            "Time": time.timestamp(),
        }
        try:
            result = events_backends[account_id][region].put_events([entry])[0]
        except Exception as error:  # EventBridge delivery is best effort; the job's state stands
            logger.warning("could not deliver %s event %s: %r", source, detail_type, error)
            result = {}
        envelope = {
            "version": "0",
            "id": result.get("EventId", str(uuid.uuid4())),
            "detail-type": detail_type,
            "source": source,
            "account": account_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": resources,
            "detail": json.loads(entry["Detail"]),
        }
        with self._lock:
            self.history.append(envelope)
        return envelope


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
