"""Powertools idempotency on the pipeline's single DynamoDB state table.

The table's keys are `pk`/`sk` (see docs/contracts.md); Powertools then stores each record with
`pk = idempotency#<function>` and the hashed payload in `sk`.
"""

from __future__ import annotations

import os
from functools import cache

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from common.aws_clients import client


@cache
def persistence_layer() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(
        table_name=os.environ["STATE_TABLE"],
        key_attr="pk",
        sort_key_attr="sk",
        boto3_client=client("dynamodb"),
    )


def idempotency_config(
    event_key_jmespath: str, expires_after_seconds: int = 7 * 24 * 3600
) -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath=event_key_jmespath,
        expires_after_seconds=expires_after_seconds,
        raise_on_no_idempotency_key=True,
    )
