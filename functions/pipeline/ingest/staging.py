"""FASTQ bytes -> gzip -> S3 multipart uploads under staged/, with bounded memory.

- gzip: each block of FASTQ (a few MiB, always whole reads) is compressed as its own gzip
  member. Concatenated members are one valid gzip file (RFC 1952; bgzip works the same way), and
  independent members let compression run on several threads (both deflaters below release the
  GIL), so a Lambda with 2+ vCPUs compresses in parallel with the parsing thread.
- deflater: ISA-L's igzip (`isal` wheel, levels 1-3) where it is installed, which it is in the
  Lambda package: on FASTQ tiles it deflates ~5x faster than zlib level 1, and that is what
  brings ingest past 150 MB/s of FASTA per core (docs/benchmarks.md). Its output is ordinary
  gzip (`gzip -t`, zlib and HealthOmics read it). Without the wheel, or at level 0 (stored) or
  4-9, stdlib zlib with `Z_RLE`: the constant quality lines collapse to runs and the bases get
  ~2-bit Huffman codes, smaller and faster than zlib's default strategy on tiles.
- S3: parts of `part_bytes` are uploaded by a small thread pool while parsing continues; at most
  a few parts and blocks are in flight, so memory does not grow with the file.
- Sources: when a staged object reaches `max_object_bytes` the next block starts a new object
  (a new read-set source). Objects end on block boundaries, i.e. between whole reads.
- abort(): aborts open multipart uploads and deletes completed objects, so an input that turns
  out to be invalid late leaves nothing under staged/.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

try:
    from isal import isal_zlib
except ImportError:  # pragma: no cover - exercised by forcing deflate="zlib" in the tests
    isal_zlib = None

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
BLOCK_BYTES = 4 * MIB  # FASTQ bytes per gzip member
S3_MIN_PART_BYTES = 5 * MIB  # S3's minimum for all but the last part
GZIP_WBITS = zlib.MAX_WBITS | 16  # deflate inside a gzip header and trailer
ISAL_LEVELS = (1, 2, 3)  # ISA-L's level 0 is its fastest deflate, not zlib's "stored"
DEFAULT_DEFLATE = "isal" if isal_zlib is not None else "zlib"


def gzip_member(pieces: Sequence[bytes], level: int = 1, deflate: str = DEFAULT_DEFLATE) -> bytes:
    """One gzip member holding the pieces in order (no join: each piece is fed to the deflater)."""
    if deflate == "isal" and isal_zlib is not None and level in ISAL_LEVELS:
        compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, GZIP_WBITS)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, GZIP_WBITS, 9, zlib.Z_RLE)
    return b"".join([*(compressor.compress(piece) for piece in pieces), compressor.flush()])


def deflater_name(level: int, deflate: str = DEFAULT_DEFLATE) -> str:
    """What `gzip_member` uses at this level, for logs and results: 'isal level 1', 'zlib level 0'."""
    uses_isal = deflate == "isal" and isal_zlib is not None and level in ISAL_LEVELS
    return f"{'isal' if uses_isal else 'zlib'} level {level}"


@dataclass
class _StagedObject:
    key: str
    upload_id: str
    parts: list[Future] = field(default_factory=list)
    size: int = 0


class StagedFastqUpload:
    """Write FASTQ bytes (whole reads per `write`); get gzip objects `<prefix>.NNN.fastq.gz` in S3."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key_prefix: str,
        *,
        max_object_bytes: int,
        max_objects: int = 100,
        part_bytes: int = 8 * MIB,
        gzip_level: int = 1,
        deflate: str = DEFAULT_DEFLATE,
        compress_threads: int | None = None,
    ) -> None:
        if part_bytes < S3_MIN_PART_BYTES:
            raise ValueError(f"part_bytes must be at least {S3_MIN_PART_BYTES} (S3 minimum)")
        self._s3 = s3
        self.bucket = bucket
        self._key_prefix = key_prefix
        self._max_object_bytes = max_object_bytes
        self._max_objects = max_objects
        self._part_bytes = part_bytes
        self._gzip_level = gzip_level
        self._deflate = deflate
        self.deflater = deflater_name(gzip_level, deflate)
        threads = compress_threads or _usable_cpus()
        self._compressors = ThreadPoolExecutor(threads, thread_name_prefix="gzip")
        self._uploaders = ThreadPoolExecutor(2, thread_name_prefix="s3-part")
        self._max_compress_in_flight = 2 * threads
        self._compressing: deque[Future] = deque()
        self._block: list[bytes] = []
        self._block_size = 0
        self._part: list[bytes] = []  # gzip members of the next S3 part
        self._part_size = 0
        self._objects: list[_StagedObject] = []
        self._current: _StagedObject | None = None
        self.fastq_bytes = 0
        self.gzip_bytes = 0

    # -- public --------------------------------------------------------------------------

    def write(self, fastq: bytes) -> None:
        """Queue FASTQ bytes; `fastq` must end on a read boundary (as FastaToFastq returns it)."""
        if not fastq:
            return
        self.fastq_bytes += len(fastq)
        self._block.append(fastq)
        self._block_size += len(fastq)
        if self._block_size >= BLOCK_BYTES:
            self._submit_block()

    def close(self) -> list[str]:
        """Flush everything and complete the uploads; returns the staged keys in order."""
        self._submit_block()
        while self._compressing:
            self._take_compressed()
        if self._current is not None:
            self._finish_object()
        self._compressors.shutdown()
        self._uploaders.shutdown()
        return [obj.key for obj in self._objects]

    def abort(self) -> None:
        """Best effort: leave no staged object and no open multipart upload behind."""
        for pending in self._compressing:
            pending.cancel()
        self._compressors.shutdown(wait=True, cancel_futures=True)
        self._uploaders.shutdown(wait=True, cancel_futures=True)
        for obj in self._objects:
            try:
                if obj.upload_id:
                    self._s3.abort_multipart_upload(Bucket=self.bucket, Key=obj.key, UploadId=obj.upload_id)
                else:
                    self._s3.delete_object(Bucket=self.bucket, Key=obj.key)
            except ClientError as err:  # cleanup must not hide the rejection; log and go on
                logger.warning("could not remove staged s3://%s/%s: %s", self.bucket, obj.key, err)

    # -- internals -----------------------------------------------------------------------

    def _submit_block(self) -> None:
        if not self._block:
            return
        pieces, self._block, self._block_size = self._block, [], 0
        self._compressing.append(
            self._compressors.submit(gzip_member, pieces, self._gzip_level, self._deflate)
        )
        while len(self._compressing) > self._max_compress_in_flight:
            self._take_compressed()

    def _take_compressed(self) -> None:
        member = self._compressing.popleft().result()
        if self._current is None:
            self._open_object()
        assert self._current is not None
        self._part.append(member)
        self._part_size += len(member)
        self._current.size += len(member)
        self.gzip_bytes += len(member)
        if self._current.size >= self._max_object_bytes:
            self._finish_object()
        elif self._part_size >= self._part_bytes:
            self._upload_part()

    def _open_object(self) -> None:
        if len(self._objects) >= self._max_objects:
            raise TooManySources(self._max_objects, self._max_object_bytes)
        key = f"{self._key_prefix}.{len(self._objects) + 1:03d}.fastq.gz"
        upload = self._s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType="application/gzip")
        self._current = _StagedObject(key, upload["UploadId"])
        self._objects.append(self._current)

    def _upload_part(self) -> None:
        assert self._current is not None
        body = b"".join(self._part)
        self._part, self._part_size = [], 0
        number = len(self._current.parts) + 1
        # Bound memory: wait for older parts before queueing more than two.
        in_flight = [p for p in self._current.parts if not p.done()]
        if len(in_flight) >= 2:
            in_flight[0].result()
        self._current.parts.append(self._uploaders.submit(self._put_part, self._current, number, body))

    def _put_part(self, obj: _StagedObject, number: int, body: bytes) -> dict[str, Any]:
        response = self._s3.upload_part(
            Bucket=self.bucket, Key=obj.key, UploadId=obj.upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _finish_object(self) -> None:
        assert self._current is not None
        if self._part or not self._current.parts:
            self._upload_part()
        obj, self._current = self._current, None
        parts = [future.result() for future in obj.parts]
        self._s3.complete_multipart_upload(
            Bucket=self.bucket, Key=obj.key, UploadId=obj.upload_id, MultipartUpload={"Parts": parts}
        )
        obj.upload_id = ""  # completed: abort() must delete it instead


def _usable_cpus() -> int:
    """CPUs this process may run on (Lambda: ~1 vCPU per 1769 MB of memory)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class TooManySources(Exception):
    def __init__(self, max_objects: int, max_object_bytes: int) -> None:
        super().__init__(
            f"needs more than {max_objects} staged FASTQ sources of {max_object_bytes:,} bytes each "
            "(HealthOmics takes at most 100 sources per import job)"
        )
