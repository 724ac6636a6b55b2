"""`s3://bucket/key` URIs, as SageMaker requests carry them (channels, ModelDataUrl, outputs)."""

from __future__ import annotations


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI; ValueError for anything else (the caller says whose)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key
