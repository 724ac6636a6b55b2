"""Archives as SageMaker takes them: a source dir or a model as a tar.gz, built in memory."""

from __future__ import annotations

import io
import tarfile


def tar_gz(files: dict[str, str]) -> bytes:
    """A .tar.gz holding `files` (path inside the archive -> text)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
