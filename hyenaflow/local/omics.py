"""HealthOmics sequence stores, emulated on moto's backend framework (moto has no omics).

Served by the same moto server (see moto_server.py). Requests are parsed and responses
serialised by moto from botocore's omics service model (`automated_parameter_parsing` +
`ActionResult`), so shapes, status codes and error codes are those boto3 expects.

What is emulated, as HealthOmics behaves:
- CreateSequenceStore / GetSequenceStore / ListSequenceStores, each store with an S3 access point
  whose alias is a moto S3 bucket (`s3Access.s3Uri` = `s3://<alias>/<account>/sequenceStore/<id>/`).
- StartReadSetImportJob runs in a background thread: SUBMITTED -> IN_PROGRESS -> COMPLETED |
  COMPLETED_WITH_FAILURES | FAILED, one read set per source. FASTQ sources are validated (same
  Region, object exists, gzip, 4-line records, read length limit) and copied to
  `<s3Uri>readSet/<readSetId>/<source file name>`. Each status change puts an `aws.omics`
  "Read Set Import Job Status Change" event on the default bus. A repeated clientToken returns
  the existing job (idempotent, as AWS idempotency tokens are).
- ListReadSets, GetReadSetMetadata (`files.source1.s3Access.s3Uri`), ListReadSetImportJobs.
- Archiving: `archive_read_sets()` (test/demo hook; AWS archives after 30 days unread) takes the
  objects out of the access point; StartReadSetActivationJob puts them back (ACTIVATING -> ACTIVE).
Only FASTQ imports are emulated; BAM/CRAM/uBAM sources fail with a message that says so.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse

from hyenaflow.local.moto_server import DEFAULT_REGION, ExtraService

if TYPE_CHECKING:
    from hyenaflow.local.moto_server import EventBus

# Longest FASTQ read accepted. HealthOmics takes long reads (ONT/PacBio) in FASTQ; our tiles are
# 10 kb (functions/pipeline/ingest/fastq_tiles.py), far below this.
MAX_READ_LENGTH = 100_000
IMPORT_EVENT = "Read Set Import Job Status Change"
ACTIVATION_EVENT = "Read Set Activation Job Status Change"
_IUPAC_BYTES = b"ACGTURYSWKMBDHVNacgturyswkmbdhvn.-"
_PHRED33_BYTES = bytes(range(33, 127))
_S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")


class ResourceNotFoundException(ServiceException):
    code = "ResourceNotFoundException"


class ValidationException(ServiceException):
    code = "ValidationException"


def _now() -> datetime:
    return datetime.now(UTC)


def _numeric_id() -> str:
    return str(random.randint(10**9, 10**10 - 1))


@dataclass
class SequenceStore:
    id: str
    arn: str
    name: str
    description: str | None
    creation_time: datetime
    access_point_bucket: str
    s3_prefix: str
    s3_access_point_arn: str
    e_tag_algorithm_family: str = "MD5up"
    fallback_location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    sse_config: dict[str, str] = field(default_factory=lambda: {"type": "KMS"})

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.access_point_bucket}/{self.s3_prefix}"

    def detail(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "arn": self.arn,
            "name": self.name,
            "sseConfig": self.sse_config,
            "creationTime": self.creation_time,
            "eTagAlgorithmFamily": self.e_tag_algorithm_family,
            "status": "ACTIVE",
            "updateTime": self.creation_time,
        }
        if self.description:
            out["description"] = self.description
        if self.fallback_location:
            out["fallbackLocation"] = self.fallback_location
        return out


@dataclass
class ReadSet:
    id: str
    arn: str
    sequence_store_id: str
    subject_id: str
    sample_id: str
    name: str | None
    description: str | None
    generated_from: str | None
    creation_time: datetime
    creation_job_id: str
    total_read_count: int
    total_base_count: int
    files: dict[str, dict[str, Any]]  # source1/source2 -> {key, contentLength, md5}
    status: str = "ACTIVE"
    archived_objects: dict[str, bytes] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "arn": self.arn,
            "sequenceStoreId": self.sequence_store_id,
            "subjectId": self.subject_id,
            "sampleId": self.sample_id,
            "status": self.status,
            "fileType": "FASTQ",
            "creationTime": self.creation_time,
            "creationType": "IMPORT",
            "sequenceInformation": {
                "totalReadCount": self.total_read_count,
                "totalBaseCount": self.total_base_count,
            },
            "etag": {"algorithm": "FASTQ_MD5up"}
            | {source: info["md5"] for source, info in self.files.items()},
        }
        if self.generated_from:
            out["sequenceInformation"]["generatedFrom"] = self.generated_from
        for key, value in (("name", self.name), ("description", self.description)):
            if value:
                out[key] = value
        return out


@dataclass
class ImportSource:
    request: dict[str, Any]
    status: str = "NOT_STARTED"
    status_message: str | None = None
    read_set_id: str | None = None

    def detail(self) -> dict[str, Any]:
        out = {key: value for key, value in self.request.items() if value is not None}
        out["status"] = self.status
        if self.status_message:
            out["statusMessage"] = self.status_message
        if self.read_set_id:
            out["readSetId"] = self.read_set_id
        return out


@dataclass
class Job:
    """An import or activation job; `sources` are ImportSource (import) or dicts (activation)."""

    id: str
    sequence_store_id: str
    creation_time: datetime
    sources: list[Any]
    role_arn: str | None = None
    status: str = "SUBMITTED"
    status_message: str | None = None
    completion_time: datetime | None = None

    def header(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "sequenceStoreId": self.sequence_store_id,
            "status": self.status,
            "creationTime": self.creation_time,
        }
        if self.role_arn:
            out["roleArn"] = self.role_arn
        if self.completion_time:
            out["completionTime"] = self.completion_time
        return out


class SourceInvalid(Exception):
    """A source file HealthOmics would refuse; the message goes to the source's statusMessage."""


class OmicsBackend(BaseBackend):
    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.sequence_stores: dict[str, SequenceStore] = {}
        self.read_sets: dict[str, ReadSet] = {}
        self.import_jobs: dict[str, Job] = {}
        self.activation_jobs: dict[str, Job] = {}
        self.client_tokens: dict[tuple[str, str], str] = {}
        self.lock = threading.RLock()

    # moto builds a backend's routes from its `urls.py`; ours has none. Every request goes to
    # one dispatcher and moto picks the operation from botocore's model (method + URI).
    @property
    def url_bases(self) -> list[str]:
        return [r"https?://omics\.(.+)\.amazonaws\.com"]

    @property
    def url_paths(self) -> dict[str, Any]:
        return {"/.*": OmicsResponse.dispatch}

    # --- sequence stores ---------------------------------------------------------------

    def create_sequence_store(
        self,
        name: str,
        description: str | None,
        fallback_location: str | None,
        tags: dict[str, str] | None,
        e_tag_algorithm_family: str | None = None,
        sse_config: dict[str, str] | None = None,
    ) -> SequenceStore:
        from moto.s3.models import s3_backends

        store_id = _numeric_id()
        # An access point alias: `<name>-<random>-s3alias`, 63 characters at most, like a bucket.
        alias = f"{self.account_id}-{store_id}-{uuid.uuid4().hex[:16]}-s3alias"
        s3_backends[self.account_id]["aws"].create_bucket(alias, self.region_name)
        store = SequenceStore(
            id=store_id,
            arn=f"arn:aws:omics:{self.region_name}:{self.account_id}:sequenceStore/{store_id}",
            name=name,
            description=description,
            creation_time=_now(),
            access_point_bucket=alias,
            s3_prefix=f"{self.account_id}/sequenceStore/{store_id}/",
            s3_access_point_arn=f"arn:aws:s3:{self.region_name}:{self.account_id}:accesspoint/{store_id}",
            fallback_location=fallback_location,
            tags=tags or {},
            e_tag_algorithm_family=e_tag_algorithm_family or "MD5up",
            sse_config=sse_config or {"type": "KMS"},
        )
        with self.lock:
            self.sequence_stores[store_id] = store
        return store

    def get_sequence_store(self, store_id: str) -> SequenceStore:
        store = self.sequence_stores.get(store_id)
        if store is None:
            raise ResourceNotFoundException(f"Sequence store {store_id} not found")
        return store

    # --- import jobs ---------------------------------------------------------------------

    def start_read_set_import_job(
        self, store_id: str, role_arn: str, sources: list[dict[str, Any]], client_token: str | None
    ) -> tuple[Job, bool]:
        """The job and whether it is new (False: an earlier job with the same clientToken)."""
        self.get_sequence_store(store_id)
        if not 1 <= len(sources) <= 100:
            raise ValidationException("sources must hold between 1 and 100 items")
        with self.lock:
            if client_token and (store_id, client_token) in self.client_tokens:
                return self.import_jobs[self.client_tokens[(store_id, client_token)]], False
            job = Job(
                id=_numeric_id(),
                sequence_store_id=store_id,
                role_arn=role_arn,
                creation_time=_now(),
                sources=[ImportSource(request=dict(source)) for source in sources],
            )
            self.import_jobs[job.id] = job
            if client_token:
                self.client_tokens[(store_id, client_token)] = job.id
        _run_in_background(self._run_import, job)
        return job, True

    def get_import_job(self, store_id: str, job_id: str) -> Job:
        self.get_sequence_store(store_id)
        job = self.import_jobs.get(job_id)
        if job is None or job.sequence_store_id != store_id:
            raise ResourceNotFoundException(f"Import job {job_id} not found in sequence store {store_id}")
        return job

    def _run_import(self, job: Job) -> None:
        store = self.get_sequence_store(job.sequence_store_id)
        self._set_status(job, "IN_PROGRESS", IMPORT_EVENT, "importJob")
        for source in job.sources:
            source.status = "IN_PROGRESS"
            try:
                source.read_set_id = self._import_source(store, job, source.request).id
                source.status = "FINISHED"
            except SourceInvalid as error:
                source.status, source.status_message = "FAILED", str(error)
        failed = sum(source.status == "FAILED" for source in job.sources)
        if failed == 0:
            self._set_status(job, "COMPLETED", IMPORT_EVENT, "importJob")
        elif failed == len(job.sources):
            message = "All sources failed to import; see each source's statusMessage"
            self._set_status(job, "FAILED", IMPORT_EVENT, "importJob", message)
        else:
            message = (
                f"{failed} of {len(job.sources)} sources failed to import; see each source's statusMessage"
            )
            self._set_status(job, "COMPLETED_WITH_FAILURES", IMPORT_EVENT, "importJob", message)

    def _import_source(self, store: SequenceStore, job: Job, request: dict[str, Any]) -> ReadSet:
        from moto.s3.models import s3_backends

        if request.get("sourceFileType") != "FASTQ":
            raise SourceInvalid(
                f"sourceFileType {request.get('sourceFileType')} is not emulated locally; only FASTQ is"
            )
        read_set_id = _numeric_id()
        files: dict[str, dict[str, Any]] = {}
        reads = bases = 0
        s3 = s3_backends[self.account_id]["aws"]
        for slot, uri in sorted(request["sourceFiles"].items()):
            data = self._read_source(uri)
            slot_reads, slot_bases, md5 = validate_fastq_gz(data, uri)
            reads, bases = reads + slot_reads, bases + slot_bases
            key = f"{store.s3_prefix}readSet/{read_set_id}/{uri.rsplit('/', 1)[-1]}"
            files[slot] = {"key": key, "contentLength": len(data), "md5": md5, "data": data}
        for info in files.values():
            s3.put_object(store.access_point_bucket, info["key"], info.pop("data"))
        read_set = ReadSet(
            id=read_set_id,
            arn=f"{store.arn}/readSet/{read_set_id}",
            sequence_store_id=store.id,
            subject_id=request["subjectId"],
            sample_id=request["sampleId"],
            name=request.get("name"),
            description=request.get("description"),
            generated_from=request.get("generatedFrom"),
            creation_time=_now(),
            creation_job_id=job.id,
            total_read_count=reads,
            total_base_count=bases,
            files=files,
        )
        with self.lock:
            self.read_sets[read_set_id] = read_set
        return read_set

    def _read_source(self, uri: str) -> bytes:
        from moto.s3.exceptions import MissingBucket
        from moto.s3.models import s3_backends

        match = _S3_URI.match(uri)
        if not match:
            raise SourceInvalid(f"{uri}: not an s3://bucket/key URI")
        bucket_name, key_name = match.groups()
        s3 = s3_backends[self.account_id]["aws"]
        try:
            bucket = s3.get_bucket(bucket_name)
        except MissingBucket as error:
            raise SourceInvalid(f"{uri}: bucket {bucket_name} does not exist") from error
        if bucket.region_name != self.region_name:
            raise SourceInvalid(
                f"{uri}: bucket is in {bucket.region_name}; sources must be in the sequence store's "
                f"Region ({self.region_name})"
            )
        key = bucket.keys.get(key_name)
        if key is None:
            raise SourceInvalid(f"{uri}: object does not exist")
        return key.value

    # --- read sets ---------------------------------------------------------------------------

    def get_read_set(self, store_id: str, read_set_id: str) -> ReadSet:
        self.get_sequence_store(store_id)
        read_set = self.read_sets.get(read_set_id)
        if read_set is None or read_set.sequence_store_id != store_id:
            raise ResourceNotFoundException(f"Read set {read_set_id} not found in sequence store {store_id}")
        return read_set

    def read_set_metadata(self, read_set: ReadSet) -> dict[str, Any]:
        store = self.get_sequence_store(read_set.sequence_store_id)
        out = read_set.summary() | {"creationJobId": read_set.creation_job_id}
        out["files"] = {
            slot: {
                "totalParts": 1,
                "partSize": info["contentLength"],
                "contentLength": info["contentLength"],
                "s3Access": {"s3Uri": f"s3://{store.access_point_bucket}/{info['key']}"},
            }
            for slot, info in read_set.files.items()
        }
        return out

    def archive_read_set(self, read_set: ReadSet) -> None:
        """What HealthOmics does to read sets unread for 30 days: objects become unreadable."""
        from moto.s3.models import s3_backends

        store = self.get_sequence_store(read_set.sequence_store_id)
        s3 = s3_backends[self.account_id]["aws"]
        with self.lock:
            if read_set.status != "ACTIVE":
                return
            for info in read_set.files.values():
                key = s3.get_object(store.access_point_bucket, info["key"])
                read_set.archived_objects[info["key"]] = key.value
                s3.delete_object(store.access_point_bucket, info["key"])
            read_set.status = "ARCHIVED"

    # --- activation jobs -------------------------------------------------------------------

    def start_read_set_activation_job(
        self, store_id: str, read_set_ids: list[str], client_token: str | None
    ) -> Job:
        for read_set_id in read_set_ids:
            self.get_read_set(store_id, read_set_id)
        with self.lock:
            if client_token and (store_id, "activation:" + client_token) in self.client_tokens:
                return self.activation_jobs[self.client_tokens[(store_id, "activation:" + client_token)]]
            job = Job(
                id=_numeric_id(),
                sequence_store_id=store_id,
                creation_time=_now(),
                sources=[{"readSetId": read_set_id, "status": "NOT_STARTED"} for read_set_id in read_set_ids],
            )
            self.activation_jobs[job.id] = job
            if client_token:
                self.client_tokens[(store_id, "activation:" + client_token)] = job.id
            for read_set_id in read_set_ids:
                if self.read_sets[read_set_id].status == "ARCHIVED":
                    self.read_sets[read_set_id].status = "ACTIVATING"
        _run_in_background(self._run_activation, job)
        return job

    def get_activation_job(self, store_id: str, job_id: str) -> Job:
        job = self.activation_jobs.get(job_id)
        if job is None or job.sequence_store_id != store_id:
            raise ResourceNotFoundException(f"Activation job {job_id} not found in sequence store {store_id}")
        return job

    def _run_activation(self, job: Job) -> None:
        from moto.s3.models import s3_backends

        store = self.get_sequence_store(job.sequence_store_id)
        s3 = s3_backends[self.account_id]["aws"]
        self._set_status(job, "IN_PROGRESS", ACTIVATION_EVENT, "activationJob")
        for source in job.sources:
            read_set = self.read_sets[source["readSetId"]]
            with self.lock:
                # An already active read set needs nothing: the source simply finishes.
                for key, value in read_set.archived_objects.items():
                    s3.put_object(store.access_point_bucket, key, value)
                read_set.archived_objects.clear()
                read_set.status = "ACTIVE"
            source["status"] = "FINISHED"
        self._set_status(job, "COMPLETED", ACTIVATION_EVENT, "activationJob")

    # --- events -------------------------------------------------------------------------------

    def _set_status(
        self, job: Job, status: str, detail_type: str, kind: str, message: str | None = None
    ) -> None:
        job.status, job.status_message = status, message
        if status in ("COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "CANCELLED"):
            job.completion_time = _now()
        if _state.events is None:
            return
        store = self.get_sequence_store(job.sequence_store_id)
        job_arn = f"{store.arn}/{kind}/{job.id}"
        detail = {
            "omicsVersion": "1.0.0",
            "arn": job_arn,
            "sequenceStoreId": job.sequence_store_id,
            "id": job.id,
            "status": status,
        }
        if message:
            detail["statusMessage"] = message
        _state.events.put(self.account_id, self.region_name, "aws.omics", detail_type, detail, [job_arn])


def validate_fastq_gz(data: bytes, uri: str) -> tuple[int, int, str]:
    """Check a FASTQ source as HealthOmics does; return (reads, bases, md5 of the FASTQ text).

    Streams the decompressed text in blocks (sources may be GBs of gzip) and checks each block's
    records with C-speed bytes operations; only a failing block is rescanned record by record, so
    the SourceInvalid raised names the file and line of the first problem.
    """
    if data[:2] != b"\x1f\x8b":
        raise SourceInvalid(f"{uri}: not gzip compressed; HealthOmics takes FASTQ sources as .gz only")
    md5, reads, bases, lines_done, pending = hashlib.md5(), 0, 0, 0, b""
    try:
        for text in _inflate(data):
            md5.update(text)
            buffer = pending + text
            if b"\r" in buffer:
                buffer = buffer.replace(b"\r\n", b"\n")
            lines = buffer.split(b"\n")
            pending = lines.pop()  # an incomplete last line waits for the next block
            whole = len(lines) - len(lines) % 4
            bases += _checked_bases(lines[:whole], lines_done + 1, uri)
            reads, lines_done = reads + whole // 4, lines_done + whole
            if whole < len(lines):
                pending = b"\n".join([*lines[whole:], pending])
    except zlib.error as error:
        raise SourceInvalid(f"{uri}: corrupt gzip stream after line {lines_done} ({error})") from error
    tail = pending.rstrip(b"\r").split(b"\n") if pending else []
    if tail and not tail[-1]:
        tail.pop()  # the file's final newline
    if len(tail) % 4:
        total = lines_done + len(tail)
        raise SourceInvalid(
            f"{uri}: {total} lines is not a multiple of 4; FASTQ records are header, sequence, '+', quality"
        )
    bases += _checked_bases(tail, lines_done + 1, uri)
    reads += len(tail) // 4
    if not reads:
        raise SourceInvalid(f"{uri}: no FASTQ records")
    return reads, bases, md5.hexdigest()


def _inflate(data: bytes, block: int = 1 << 20) -> Iterator[bytes]:
    """Decompressed text of every gzip member in `data`, block by block; zlib.error if corrupt."""
    position = 0
    while position < len(data):
        inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        while not inflater.eof:
            if position >= len(data):
                raise zlib.error("truncated: the gzip stream ends before its trailer")
            chunk = data[position : position + block]
            position += len(chunk)
            yield inflater.decompress(chunk)
        position -= len(inflater.unused_data)  # the next member starts there
        if data[position : position + 2] != b"\x1f\x8b":
            return  # trailing padding after the last member is ignored, as gzip(1) does


def _checked_bases(lines: list[bytes], first_line: int, uri: str) -> int:
    """Bases in whole 4-line records; raises SourceInvalid at the first bad record."""
    headers, sequences, separators, qualities = lines[0::4], lines[1::4], lines[2::4], lines[3::4]
    lengths = list(map(len, sequences))
    if (
        all(header[:1] == b"@" and len(header) > 1 for header in headers)
        and all(lengths)
        and max(lengths, default=0) <= MAX_READ_LENGTH
        and not b"".join(sequences).translate(None, _IUPAC_BYTES)
        and all(separator[:1] == b"+" for separator in separators)
        and lengths == list(map(len, qualities))
        and not b"".join(qualities).translate(None, _PHRED33_BYTES)
    ):
        return sum(lengths)
    for start in range(0, len(lines), 4):
        _check_record(lines[start : start + 4], first_line + start, uri)
    raise AssertionError("a block failed its checks but none of its records did")  # pragma: no cover


def _check_record(record: list[bytes], first_line: int, uri: str) -> None:
    header, sequence, separator, quality = record
    if header[:1] != b"@" or len(header) < 2:
        raise SourceInvalid(f"{uri}: line {first_line}: a FASTQ header must start with '@' and name the read")
    if not sequence or sequence.translate(None, _IUPAC_BYTES):
        raise SourceInvalid(f"{uri}: line {first_line + 1}: sequence is empty or holds non-IUPAC characters")
    if len(sequence) > MAX_READ_LENGTH:
        raise SourceInvalid(
            f"{uri}: line {first_line + 1}: read of {len(sequence)} bases exceeds the {MAX_READ_LENGTH} base limit"
        )
    if separator[:1] != b"+":
        raise SourceInvalid(f"{uri}: line {first_line + 2}: expected the '+' separator line")
    if len(quality) != len(sequence):
        raise SourceInvalid(
            f"{uri}: line {first_line + 3}: quality has {len(quality)} characters for {len(sequence)} bases"
        )
    if quality.translate(None, _PHRED33_BYTES):
        raise SourceInvalid(f"{uri}: line {first_line + 3}: quality characters must be Phred+33 ('!' to '~')")


# --- HTTP layer ---------------------------------------------------------------------------------


def _page(items: list[Any], max_results: int | None, next_token: str | None) -> tuple[list[Any], str | None]:
    if next_token and not next_token.isdigit():
        raise ValidationException(f"nextToken {next_token!r} is not one this service returned")
    start = int(next_token) if next_token else 0
    size = max_results or 100
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


class OmicsResponse(BaseResponse):
    def __init__(self) -> None:
        super().__init__(service_name="omics")
        self.automated_parameter_parsing = True

    @property
    def backend(self) -> OmicsBackend:
        return omics_backends[self.current_account][self.region]

    def create_sequence_store(self) -> ActionResult:
        store = self.backend.create_sequence_store(
            name=self._get_param("name"),
            description=self._get_param("description"),
            fallback_location=self._get_param("fallbackLocation"),
            tags=self._get_param("tags"),
            e_tag_algorithm_family=self._get_param("eTagAlgorithmFamily"),
            sse_config=self._get_param("sseConfig"),
        )
        return ActionResult(store.detail() | {"s3Access": {"s3Uri": store.s3_uri}})

    def get_sequence_store(self) -> ActionResult:
        store = self.backend.get_sequence_store(self._get_param("id"))
        s3_access = {"s3Uri": store.s3_uri, "s3AccessPointArn": store.s3_access_point_arn}
        return ActionResult(store.detail() | {"s3Access": s3_access})

    def list_sequence_stores(self) -> ActionResult:
        stores = [store.detail() for store in self.backend.sequence_stores.values()]
        page, token = _page(stores, self._get_param("maxResults"), self._get_param("nextToken"))
        return ActionResult({"sequenceStores": page, "nextToken": token})

    def start_read_set_import_job(self) -> ActionResult:
        job, created = self.backend.start_read_set_import_job(
            store_id=self._get_param("sequenceStoreId"),
            role_arn=self._get_param("roleArn"),
            sources=self._get_param("sources"),
            client_token=self._get_param("clientToken"),
        )
        # A new job is reported as SUBMITTED even if its thread has already picked it up.
        return ActionResult(job.header() | ({"status": "SUBMITTED"} if created else {}))

    def get_read_set_import_job(self) -> ActionResult:
        job = self.backend.get_import_job(self._get_param("sequenceStoreId"), self._get_param("id"))
        out = job.header() | {"sources": [source.detail() for source in job.sources]}
        if job.status_message:
            out["statusMessage"] = job.status_message
        return ActionResult(out)

    def list_read_set_import_jobs(self) -> ActionResult:
        store_id = self._get_param("sequenceStoreId")
        self.backend.get_sequence_store(store_id)
        wanted = (self._get_param("filter") or {}).get("status")
        jobs = [
            job.header()
            for job in self.backend.import_jobs.values()
            if job.sequence_store_id == store_id and (wanted is None or job.status == wanted)
        ]
        page, token = _page(jobs, self._get_param("maxResults"), self._get_param("nextToken"))
        return ActionResult({"importJobs": page, "nextToken": token})

    def list_read_sets(self) -> ActionResult:
        store_id = self._get_param("sequenceStoreId")
        self.backend.get_sequence_store(store_id)
        wanted = {key: value for key, value in (self._get_param("filter") or {}).items() if value}
        matching_fields = {"status", "sampleId", "subjectId", "name"}
        read_sets = [
            read_set.summary()
            for read_set in self.backend.read_sets.values()
            if read_set.sequence_store_id == store_id
            and all(
                read_set.summary().get(key) == value
                for key, value in wanted.items()
                if key in matching_fields
            )
        ]
        page, token = _page(read_sets, self._get_param("maxResults"), self._get_param("nextToken"))
        return ActionResult({"readSets": page, "nextToken": token})

    def get_read_set_metadata(self) -> ActionResult:
        read_set = self.backend.get_read_set(self._get_param("sequenceStoreId"), self._get_param("id"))
        return ActionResult(self.backend.read_set_metadata(read_set))

    def start_read_set_activation_job(self) -> ActionResult:
        sources = self._get_param("sources") or []
        job = self.backend.start_read_set_activation_job(
            store_id=self._get_param("sequenceStoreId"),
            read_set_ids=[source["readSetId"] for source in sources],
            client_token=self._get_param("clientToken"),
        )
        return ActionResult(job.header())

    def get_read_set_activation_job(self) -> ActionResult:
        job = self.backend.get_activation_job(self._get_param("sequenceStoreId"), self._get_param("id"))
        out = job.header() | {"sources": job.sources}
        if job.status_message:
            out["statusMessage"] = job.status_message
        return ActionResult(out)


omics_backends = BackendDict(OmicsBackend, "omics")


# --- module state: events sink and background threads ------------------------------------------


@dataclass
class _State:
    events: EventBus | None = None
    threads: list[threading.Thread] = field(default_factory=list)


_state = _State()


def _run_in_background(target: Any, job: Job) -> None:
    def run() -> None:
        try:
            target(job)
        except Exception as error:  # a bug here must still end the job, as AWS would
            job.status, job.status_message = "FAILED", f"Internal error in the local emulation: {error!r}"
            job.completion_time = _now()

    thread = threading.Thread(target=run, name=f"omics-job-{job.id}", daemon=True)
    _state.threads.append(thread)
    thread.start()


def service() -> ExtraService:
    return ExtraService(
        name="omics", url_pattern=re.compile(r"https?://omics\.(.+)\.amazonaws\.com"), backends=omics_backends
    )


def configure(events: EventBus) -> None:
    _state.events = events


def reset() -> None:
    shutdown()
    omics_backends.clear()


def shutdown(timeout_s: float = 10.0) -> None:
    """Wait for running import/activation threads (they are short) and forget the event sink."""
    for thread in _state.threads:
        thread.join(timeout_s)
    _state.threads.clear()
    _state.events = None


def archive_read_sets(
    sequence_store_id: str,
    read_set_ids: list[str] | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
    region: str = DEFAULT_REGION,
) -> list[str]:
    """Archive read sets (all of the store's when `read_set_ids` is None); returns their ids."""
    backend = omics_backends[account_id][region]
    backend.get_sequence_store(sequence_store_id)
    chosen = [
        read_set
        for read_set in list(backend.read_sets.values())
        if read_set.sequence_store_id == sequence_store_id
        and (read_set_ids is None or read_set.id in read_set_ids)
    ]
    for read_set in chosen:
        backend.archive_read_set(read_set)
    return [read_set.id for read_set in chosen]
