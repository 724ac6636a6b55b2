"""One new S3 object written record by record through a multipart upload, in bounded memory.

Parts of `part_bytes` go up as records arrive (S3: every part but the last at least 5 MiB, at
most 10,000 parts), so memory holds one part and one record whatever the object's size. The
object appears only at `complete()`, and never replaces one already at the key
(CompleteMultipartUpload with If-None-Match: *, S3 conditional writes): a retried poll cannot
overwrite the object an earlier attempt finished. Until then nothing is visible: `abort()` drops
the parts (and the bucket's AbortIncompleteMultipartUpload lifecycle rule removes what a crash
leaves).
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws_errors import error_code

logger = logging.getLogger(__name__)

MIB = 1024 * 1024


class ObjectAlreadyExists(Exception):
    """Another attempt completed an object at this key first."""


class FastaObjectUpload:
    def __init__(self, s3: Any, bucket: str, key: str, *, part_bytes: int = 8 * MIB) -> None:
        if part_bytes < 5 * MIB:
            raise ValueError("part_bytes must be at least 5 MiB (S3's minimum part size)")
        self._s3, self.bucket, self.key = s3, bucket, key
        self._part_bytes = part_bytes
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._buffer: list[bytes] = []
        self._buffered = 0
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType="text/x-fasta"
            )["UploadId"]
        self._buffer.append(data)
        self._buffered += len(data)
        self.bytes_written += len(data)
        if self._buffered >= self._part_bytes:
            self._upload_part()

    def complete(self) -> str:
        """Make the object visible; its ETag. ObjectAlreadyExists if one is there already."""
        if self._upload_id is None:
            raise ValueError("nothing was written")
        if self._buffer:
            self._upload_part()
        try:
            response = self._s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
                IfNoneMatch="*",
            )
        except ClientError as err:
            if error_code(err) in ("PreconditionFailed", "412"):
                self.abort()
                raise ObjectAlreadyExists(f"s3://{self.bucket}/{self.key} exists already") from None
            raise
        self._upload_id = None
        return response["ETag"].strip('"')

    def abort(self) -> None:
        """Best effort: drop the parts uploaded so far (the lifecycle rule is the backstop)."""
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except ClientError as err:  # must not hide the error that made us abort
            logger.warning("could not abort the upload of s3://%s/%s: %s", self.bucket, self.key, err)

    def _upload_part(self) -> None:
        number = len(self._parts) + 1
        body = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        response = self._s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
