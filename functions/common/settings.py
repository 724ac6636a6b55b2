"""Load a function's settings object from environment variables, once, with validation.

Field names are the lower-case environment variable names. A missing or malformed variable
fails at cold start with a message naming the variable, not deep inside a handler.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

SettingsT = TypeVar("SettingsT", bound=BaseModel)


def load_settings(model: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
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
