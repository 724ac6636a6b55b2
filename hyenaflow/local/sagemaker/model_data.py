"""A model's ModelDataUrl (model.tar.gz in S3), fetched and unpacked for an endpoint to serve."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

from hyenaflow.local.sagemaker.s3_uri import split_s3_uri


class ModelDataUnavailable(Exception):
    """The model data cannot be fetched or unpacked; the message is the endpoint's FailureReason."""


def fetch_model_data(s3: Any, model_data_url: str, directory: Path) -> Path:
    """Download `model_data_url` into `directory` and unpack it; returns the model dir."""
    try:
        bucket, key = split_s3_uri(model_data_url)
    except ValueError as error:
        raise ModelDataUnavailable(
            f"Could not download model data {model_data_url}: the local stack serves s3:// model data only"
        ) from error
    directory.mkdir(parents=True, exist_ok=True)
    model_dir = directory / "model"
    model_dir.mkdir(exist_ok=True)
    archive = directory / "model.tar.gz"
    try:
        s3.download_file(bucket, key, str(archive))
    except Exception as error:
        raise ModelDataUnavailable(f"Could not download model data {model_data_url}: {error}") from error
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(model_dir, filter="data")
    except tarfile.TarError as error:
        raise ModelDataUnavailable(f"Model data {model_data_url} is not a valid tar.gz: {error}") from error
    return model_dir
