"""What the domain code talks to, in one object: the function's settings, AWS clients, the state
table and the alert topic. Handlers make one per container; tests pass their own `client`."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic

from pipeline import aws_clients
from pipeline.alerts import send_alert
from pipeline.settings import SettingsT

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    from pipeline.state_table import PipelineState


class AwsClient:
    """A `Dependencies` attribute holding one service's boto3 client, made on first use: building
    one costs 50-300 ms at a cold start (botocore loads its service model), and no function needs
    every client."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.service = name

    def __get__(self, deps: Dependencies[Any] | None, owner: type | None = None) -> Any:
        if deps is None:
            return self
        client = deps.client(self.service)
        deps.__dict__[self.service] = client  # later reads find it in the instance, not here
        return client


class Dependencies(Generic[SettingsT]):
    s3 = AwsClient()
    omics = AwsClient()
    sagemaker = AwsClient()
    dynamodb = AwsClient()

    def __init__(self, settings: SettingsT, client: Callable[[str], Any] = aws_clients.client) -> None:
        self.settings = settings
        self.client = client

    @cached_property
    def state(self) -> PipelineState:
        from pipeline.state_table import PipelineState  # the training functions' alone: ingest skips it

        return PipelineState(self.dynamodb, self.settings.state_table)

    @cached_property
    def parameters(self) -> SSMProvider:
        """SSM parameters; the provider caches each value for its max_age across invocations."""
        from aws_lambda_powertools.utilities.parameters import SSMProvider  # poll_genbank's alone

        return SSMProvider(boto3_client=self.client("ssm"))

    def alert(self, subject: str, details: dict[str, Any]) -> str:
        return send_alert(self.client("sns"), self.settings.alert_topic_arn, subject, details)
