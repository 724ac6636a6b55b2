"""Powertools idempotency on the pipeline's single DynamoDB state table, one style for every handler.

A handler makes its one domain call idempotent, keyed on a small model of what makes two events
the same work (an import job and its status, an object version):

    idempotency = Idempotency("[import_job_id, status]", settings)

    @idempotency.idempotent_function("job")
    def handle_import(job: ImportJobStatus) -> dict: ...

and calls `idempotency.config.register_lambda_context(context)` first thing in the handler, so
a call cut off by Lambda's timeout can run again once its in-progress record expires.

The table's keys are `pk`/`sk` (see docs/contracts.md); Powertools stores each record with
`pk = idempotency#<function>` and `<module>.<function>#<hash of the key>` in `sk`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from pipeline.aws_clients import client
from pipeline.settings import PipelineSettings

DomainCall = TypeVar("DomainCall", bound=Callable[..., Any])


class Idempotency:
    def __init__(
        self, key_jmespath: str, settings: PipelineSettings, expires_after_seconds: int = 7 * 24 * 3600
    ) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath=key_jmespath,
            expires_after_seconds=expires_after_seconds,
            raise_on_no_idempotency_key=True,
        )
        self.table_name = settings.state_table

    @functools.cached_property
    def store(self) -> DynamoDBPersistenceLayer:
        """Made on the first idempotent call, not at import, like the Dependencies' clients: the
        persistence layer builds its DynamoDB client at once (botocore loads the service model,
        60-90 ms of CPU). Every event needs it, so this moves that cost from the handler's import
        (bench/bench_lambda_cold_import.py) into the first event; it does not remove it."""
        return DynamoDBPersistenceLayer(
            table_name=self.table_name, key_attr="pk", sort_key_attr="sk", boto3_client=client("dynamodb")
        )

    def idempotent_function(self, data_keyword_argument: str) -> Callable[[DomainCall], DomainCall]:
        """Powertools' `idempotent_function` with this key, on the state table; Powertools wraps the
        call on its first use, when the store is made."""

        def decorate(call: DomainCall) -> DomainCall:
            @functools.cache
            def idempotent_call() -> Callable[..., Any]:
                return idempotent_function(
                    call,
                    data_keyword_argument=data_keyword_argument,
                    config=self.config,
                    persistence_store=self.store,
                )

            @functools.wraps(call)
            def run(*args: Any, **kwargs: Any) -> Any:
                return idempotent_call()(*args, **kwargs)

            return run  # type: ignore[return-value]

        return decorate
