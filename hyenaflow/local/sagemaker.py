"""SageMaker gap-fill (placeholder: passes everything to moto)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class SageMakerGapFill:
    def __init__(
        self,
        downstream: Any,
        workdir: Path,
        events: Any,
        serve_script: Path | None = None,
        training_code_dir: Path | None = None,
    ) -> None:
        self.downstream = downstream
        self.endpoint_url = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.downstream(environ, start_response)

    def close(self) -> None:
        pass
