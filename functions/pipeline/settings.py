"""Each function's settings: environment variables (set in template.yaml), read once and validated.

Field names are the lower-case variable names. One base holds what every function reads (the
template's Globals); each function's settings extend it, so a variable is declared once. A
missing or malformed variable fails at cold start with a message naming it, not deep inside a
handler.

    PipelineSettings            DATA_BUCKET, STATE_TABLE, ALERT_TOPIC_ARN
    +- IngestSettings           ingest_fasta   (pipeline/ingest/settings.py)
    +- PollSettings             poll_genbank   (pipeline/genbank/settings.py)
    +- TrainingSettings         start_training (pipeline/training/settings.py)
       +- DeploySettings        deploy_model: it also starts the coalesced follow-up job
          +- ReconcileSettings  reconcile: it hands lost events to both

Each lives next to its domain code, so a function builds only its own settings classes. These
modules, like the functions' event models, do without `from __future__ import annotations`:
pydantic would otherwise evaluate every annotation string when the class is made (cold start).
"""

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class PipelineSettings(BaseModel):
    """What every function reads: the template's Globals."""

    # defer_build: a validator is built only for the class a function loads (milliseconds at a cold start).
    model_config = ConfigDict(frozen=True, defer_build=True)

    data_bucket: str = Field(min_length=3)
    state_table: str = Field(min_length=3)
    alert_topic_arn: str = Field(min_length=1)


SettingsT = TypeVar("SettingsT", bound=PipelineSettings)


def load_settings(model: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    """`model` from the environment (or `environ`); RuntimeError naming every bad variable."""
    env = os.environ if environ is None else environ
    values = {name: env[name.upper()] for name in model.model_fields if name.upper() in env}
    try:
        return model.model_validate(values)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in err.errors()
        )
        raise RuntimeError(
            f"{model.__name__}: bad environment configuration ({problems}); "
            "set these variables in template.yaml / the function's configuration"
        ) from err
