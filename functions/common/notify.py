"""Operator alerts through the pipeline's SNS topic (one place for their shape)."""

from __future__ import annotations

import json
import os
from typing import Any

from common.aws_clients import client


def send_alert(subject: str, details: dict[str, Any], topic_arn: str | None = None) -> str:
    """Publish an alert; returns the SNS message id. Subject is cut to SNS's 100-char limit."""
    topic = topic_arn or os.environ["ALERT_TOPIC_ARN"]
    response = client("sns").publish(
        TopicArn=topic,
        Subject=subject[:100],
        Message=json.dumps(details, indent=2, default=str, sort_keys=True),
    )
    return response["MessageId"]
