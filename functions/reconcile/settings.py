"""reconcile settings (environment variables set in template.yaml)."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, Field

from common.settings import load_settings


class ReconcileSettings(BaseModel):
    # How far back to look for jobs whose end event was lost (import/training list filters).
    reconcile_lookback_hours: int = Field(default=72, ge=1, le=24 * 30)
    # A slot that says `running` for this long without a SageMaker job is re-created.
    running_grace_seconds: int = Field(default=600, ge=0)


@cache
def reconcile_settings() -> ReconcileSettings:
    return load_settings(ReconcileSettings)
