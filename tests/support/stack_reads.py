"""What the tests read back from a stack's data bucket and alert queue, the same for the plain
moto server (lambda_env.MotoStack) and the local AWS server (local_stack.LocalStack)."""

from __future__ import annotations

import json
from typing import Any


class BucketAndAlertReads:
    """Needs `client(service)`, `bucket` and `alert_queue_url` on the class that mixes it in."""

    bucket: str
    alert_queue_url: str

    def client(self, service: str) -> Any:
        raise NotImplementedError

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def open_multipart_uploads(self) -> list[str]:
        uploads = self.client("s3").list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return [u["Key"] for u in uploads]

    def alerts(self, wait_seconds: int = 1) -> list[dict[str, Any]]:
        """SNS alerts delivered to the test queue (long poll: returns as soon as any arrive)."""
        sqs = self.client("sqs")
        found = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.alert_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                envelope = json.loads(message["Body"])
                found.append({"subject": envelope.get("Subject"), "details": json.loads(envelope["Message"])})
                sqs.delete_message(QueueUrl=self.alert_queue_url, ReceiptHandle=message["ReceiptHandle"])
            wait_seconds = 0
