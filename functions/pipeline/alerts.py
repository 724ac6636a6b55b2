"""Operator alerts through the pipeline's SNS topic (one place for their shape)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# What domain code is given to alert with: (subject, details) -> SNS message id.
Alert = Callable[[str, dict[str, Any]], Any]


def send_alert(sns: Any, topic_arn: str, subject: str, details: dict[str, Any]) -> str:
    """Publish an alert; returns the SNS message id. Subject is cut to SNS's 100-char limit."""
    response = sns.publish(
        TopicArn=topic_arn,
        Subject=subject[:100],
        Message=json.dumps(details, indent=2, default=str, sort_keys=True),
    )
    return response["MessageId"]
