"""S3 -> EventBridge events in the documented shape.

moto 5.2.5 emits EventBridge events for buckets with EventBridge notifications, but not in AWS's
shape (one constant event id, `eTag` instead of `etag`, `reason: ObjectCreated`,
`version-id: "null"`), and two events for one CompleteMultipartUpload (a PutObject one from
inside it, then its own). `install_s3_eventbridge_hook()` replaces that emitter with one that emits
the shape https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html documents, one
event per object created.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from hyenaflow.local.account import ACCOUNT_ID

_S3_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "s3:ObjectRemoved:Delete": "DeleteObject",
    "s3:ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
}


def s3_eventbridge_event(event_name: str, bucket_name: str, region: str, key: Any) -> dict[str, Any] | None:
    """The EventBridge event S3 sends for `event_name` on `key` (moto FakeKey), per
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html; None for event types
    the pipeline does not use."""
    if event_name.startswith("s3:ObjectCreated:"):
        detail_type = "Object Created"
    elif event_name.startswith("s3:ObjectRemoved:"):
        detail_type = "Object Deleted"
    else:
        return None
    obj: dict[str, Any] = {"key": quote_plus(key.name, safe="/")}
    if detail_type == "Object Created":
        obj["size"] = key.size
        obj["etag"] = key.etag.replace('"', "")
    if key.version_id and key.version_id != "null":
        obj["version-id"] = key.version_id
    obj["sequencer"] = f"{int(datetime.now(UTC).timestamp() * 1e6):X}"
    detail = {
        "version": "0",
        "bucket": {"name": bucket_name},
        "object": obj,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": ACCOUNT_ID,
        "source-ip-address": "127.0.0.1",
        "reason": _S3_REASONS.get(event_name, event_name.split(":")[-1]),
    }
    if detail_type == "Object Deleted":
        detail["deletion-type"] = "Permanently Deleted"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).timestamp(),  # moto's SQS target turns this into ISO-8601
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket_name}"],
        "detail": detail,
    }


def install_s3_eventbridge_hook() -> Callable[[], None]:
    """Make moto S3 (in this process) emit documented-shape EventBridge events; returns an undo."""
    from moto.events.models import events_backends
    from moto.s3 import notifications

    original = notifications._send_event_bridge_message

    def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        name = str(event_name.value if hasattr(event_name, "value") else event_name)
        if name == "s3:ObjectCreated:Put" and getattr(key, "multipart", None) is not None:
            return  # moto's inner put_object of CompleteMultipartUpload: S3 sends only the latter
        event = s3_eventbridge_event(name, bucket.name, bucket.region_name, key)
        if event is None:
            return
        backend = events_backends[account_id][bucket.region_name]
        for event_bus in backend.event_buses.values():
            if event_bus.name != "default":  # S3 sends to the default bus only
                continue
            for rule in list(event_bus.rules.values()):
                if rule.state == "ENABLED":
                    rule.send_to_targets(copy.deepcopy(event), transform_input=False)

    notifications._send_event_bridge_message = send_event_bridge_message

    def undo() -> None:
        notifications._send_event_bridge_message = original

    return undo
