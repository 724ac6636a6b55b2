"""The training source bundle: `sourcedir.tar.gz` that SageMaker (and the local stack) runs.

Layout, as SageMaker's `sagemaker_submit_directory` expects (entry point at the root):

    train.py, sequence_data.py, evaluation.py, training_artifact.py, plots.py, ...  (training_job/)
    hyenadna/                                              the model package (repository root)
    endpoint/inference.py (+ the other endpoint modules)   copied into the model's code/ at the end

SageMaker puts the extracted bundle on sys.path, so `import hyenadna` finds the copy at its root.

The tarball is reproducible (sorted names, zero mtimes and owners, fixed gzip header), so its
sha256 names a code version: the same sources give the same S3 key and no needless re-upload.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_SKIP_PARTS = {"__pycache__", ".pytest_cache", "tests"}


def bundle_files(repo_root: Path = REPO_ROOT) -> dict[str, Path]:
    """Archive name -> source file, for everything the training job needs."""
    training, model, endpoint = repo_root / "training_job", repo_root / "hyenadna", repo_root / "endpoint"
    entry_points = (training / "train.py", model / "__init__.py", endpoint / "inference.py")
    if not all(path.is_file() for path in entry_points):
        raise FileNotFoundError(
            f"{repo_root} lacks training_job/train.py, hyenadna/__init__.py or endpoint/inference.py"
        )
    files: dict[str, Path] = {}
    for root, prefix in ((training, ""), (model, "hyenadna/"), (endpoint, "endpoint/")):
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if (
                path.is_file()
                and not _SKIP_PARTS & set(relative.parts)
                and path.suffix not in (".pyc", ".pyo")
            ):
                if prefix and path.suffix != ".py" and path.name != "requirements.txt":
                    continue  # hyenadna/, endpoint/: code only (no READMEs, fixtures)
                files[prefix + relative.as_posix()] = path
    return files


def build_training_bundle(output: Path, repo_root: Path = REPO_ROOT) -> str:
    """Write the reproducible sourcedir.tar.gz to `output`; returns its sha256 hex digest."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, path in sorted(bundle_files(repo_root).items()):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as gz:
        gz.write(buffer.getvalue())
    return hashlib.sha256(output.read_bytes()).hexdigest()
