"""The EventBridge envelope the pipeline's triggers arrive in, as a typed pydantic model.

Each function subclasses it with its own `detail` model (functions/<name>/models.py) and parses
its event with `model_validate` first thing in the handler. The fields are those of Powertools'
`EventBridgeModel`; ours because importing `aws_lambda_powertools.utilities.parser` builds every
event model Powertools ships (ALB, API Gateway, SQS, ...) and pydantic's network types, ~45 ms
of each cold start for the one envelope used here (bench/bench_lambda_cold_import.py).

Like the settings modules, this one does without `from __future__ import annotations` (pydantic
would evaluate every annotation string when the class is made).
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventBridgeEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")
