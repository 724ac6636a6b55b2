"""SageMaker resource names derived from pipeline triggers (so replays reuse the same name)."""

from __future__ import annotations

import hashlib
import re

# SageMaker's pattern for training job, model, endpoint-config and endpoint names.
SAGEMAKER_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_MAX_LEN = 63


def sagemaker_name(prefix: str, suffix: str) -> str:
    """`<prefix>-<suffix>` made valid for SageMaker; too-long names keep a hash of the whole.

    The same (prefix, suffix) always gives the same name, which is what makes job creation
    idempotent under replayed events.
    """
    raw = f"{prefix}-{suffix}"
    cleaned = re.sub(r"[^a-zA-Z0-9-]+", "-", raw).strip("-") or "hyenaflow"
    if len(cleaned) > _MAX_LEN:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
        cleaned = f"{cleaned[: _MAX_LEN - 11].rstrip('-')}-{digest}"
    if not SAGEMAKER_NAME_PATTERN.match(cleaned):
        raise ValueError(f"cannot derive a valid SageMaker name from {raw!r} (got {cleaned!r})")
    return cleaned
