"""HealthOmics sequence stores: the backend (state and behaviour), on moto's framework.

What is emulated, as HealthOmics behaves:
- CreateSequenceStore / GetSequenceStore / ListSequenceStores, each store with an S3 access point
  whose alias is a moto S3 bucket (`s3Access.s3Uri` = `s3://<alias>/<account>/sequenceStore/<id>/`).
- StartReadSetImportJob runs in a background thread: SUBMITTED -> IN_PROGRESS -> COMPLETED |
  COMPLETED_WITH_FAILURES | FAILED, one read set per source. FASTQ sources are validated
  (fastq_validation.py; same Region, object exists) and copied to `<s3Uri>readSet/<readSetId>/<name>`.
  How HealthOmics names read-set files is not documented; AWS sample code and user output show
  the uploaded file's name (docs research B1), which is the default here (`"upload"`), and
  `configure(read_set_file_names="source")` names them after their slot (`source1`), with no
  extension, so tests can prove that readers find read-set files by content, not by name. The
  URI is decided once, at import, and is what GetReadSetMetadata reports as
  `files.<slot>.s3Access.s3Uri`; archiving and activation use that same URI. Each status change
  puts an `aws.omics` "Read Set Import Job Status Change" event on the default bus. A repeated
  clientToken returns the existing job (idempotent, as AWS idempotency tokens are).
- StartReadSetImportJob refuses (ValidationException) sources whose fields break botocore's omics
  model: `sourceFiles` S3 URIs must match `s3://([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])/(.{1,1024})`
  (a key of at most 1,024 characters), `name`/`sampleId`/`subjectId`/`generatedFrom` hold 1-127
  and `description` 1-255 characters, none of them control characters.
- ListReadSets, GetReadSetMetadata (`files.source1.s3Access.s3Uri`), ListReadSetImportJobs.
- ListTagsForResource of a read set: the tags of the import source it came from (the API calls
  them "the source's tags"; that they tag the read set is our reading, not a documented fact).
- Archiving: `archive_read_sets()` (test/demo hook; AWS archives after 30 days unread) takes the
  objects out of the access point; StartReadSetActivationJob puts them back (ACTIVATING -> ACTIVE).
- Test hooks for what AWS does on its own time: `hold_jobs("import", "activation")` /
  `release_jobs()` stop import and/or activation jobs at IN_PROGRESS until released (on AWS they
  take minutes, here milliseconds; a test that needs one in flight holds it); `fail_activations(times, message)` ends the next
  activation jobs FAILED, each source FAILED with `message` (the API's statuses allow it; the
  emulation's activations never fail on their own).
Only FASTQ imports are emulated; BAM/CRAM/uBAM sources fail with a message that says so.
"""

from __future__ import annotations

import random
import re
import threading
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.core.base_backend import BackendDict, BaseBackend

from hyenaflow.local.account import ACCOUNT_ID, DEFAULT_REGION
from hyenaflow.local.omics.exceptions import ResourceNotFoundException, SourceInvalid, ValidationException
from hyenaflow.local.omics.fastq_validation import validate_fastq_gz
from hyenaflow.local.service_events import EventBus

IMPORT_EVENT = "Read Set Import Job Status Change"
ACTIVATION_EVENT = "Read Set Activation Job Status Change"
_S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")
# StartReadSetImportJobSourceItem in botocore's omics model (2022-11-28). The service matches Java
# regular expressions, whose `.` refuses every line terminator; Python's refuses only \n.
SOURCE_FILE_URI_PATTERN = "s3://([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])/(.{1,1024})"
SOURCE_TEXT_PATTERN = "[\\p{L}||\\p{M}||\\p{Z}||\\p{S}||\\p{N}||\\p{P}]+"  # no control characters
_SOURCE_FILE_URI = re.compile(SOURCE_FILE_URI_PATTERN.replace(".{1,1024}", "[^\n\r\x85\u2028\u2029]{1,1024}"))
SOURCE_TEXT_MAX_LENGTH = {
    "name": 127,
    "sampleId": 127,
    "subjectId": 127,
    "generatedFrom": 127,
    "description": 255,
}


def import_source_violations(sources: list[dict[str, Any]]) -> list[str]:
    """What HealthOmics' request validation says about each source field its model constrains,
    in AWS's words ("Value '...' at 'sources.1.member.name' failed to satisfy constraint: ...")."""
    problems = []
    for index, source in enumerate(sources, start=1):
        at = f"sources.{index}.member"
        for slot, uri in (source.get("sourceFiles") or {}).items():
            if not _SOURCE_FILE_URI.fullmatch(uri):
                problems.append(
                    f"Value '{_shown(uri)}' at '{at}.sourceFiles.{slot}' failed to satisfy constraint: "
                    f"Member must satisfy regular expression pattern: {SOURCE_FILE_URI_PATTERN}"
                )
        for name, max_length in SOURCE_TEXT_MAX_LENGTH.items():
            value = source.get(name)
            if value is None:
                continue
            if not 1 <= len(value) <= max_length:
                problems.append(
                    f"Value '{_shown(value)}' at '{at}.{name}' failed to satisfy constraint: "
                    f"Member must have length between 1 and {max_length}"
                )
            elif any(unicodedata.category(char).startswith("C") for char in value):
                problems.append(
                    f"Value '{_shown(value)}' at '{at}.{name}' failed to satisfy constraint: "
                    f"Member must satisfy regular expression pattern: {SOURCE_TEXT_PATTERN}"
                )
    return problems


def _shown(value: str) -> str:
    return value if len(value) <= 80 else f"{value[:60]}...({len(value)} characters)"


def _now() -> datetime:
    return datetime.now(UTC)


def _numeric_id() -> str:
    return str(random.randint(10**9, 10**10 - 1))


def members(source: object, *names: str, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Attributes of `source` as members of an answer (`sequence_store_id` -> `sequenceStoreId`);
    the `optional` ones only when set, as AWS leaves an unset optional member out."""
    chosen = [*names, *(name for name in optional if getattr(source, name))]
    return {_camel_case(name): getattr(source, name) for name in chosen}


def _camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


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
        return members(
            self,
            *("id", "arn", "name", "sse_config", "creation_time", "e_tag_algorithm_family"),
            optional=("description", "fallback_location"),
        ) | {"status": "ACTIVE", "updateTime": self.creation_time}


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
    files: dict[str, ReadSetFile]  # source1/source2 -> where it is and what it holds
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "ACTIVE"
    archived_objects: dict[str, bytes] = field(default_factory=dict)  # s3Uri -> object, while ARCHIVED

    def summary(self) -> dict[str, Any]:
        identity = ("id", "arn", "sequence_store_id", "subject_id", "sample_id", "status", "creation_time")
        return members(self, *identity, optional=("name", "description")) | {
            "fileType": "FASTQ",
            "creationType": "IMPORT",
            "sequenceInformation": {
                "totalReadCount": self.total_read_count,
                "totalBaseCount": self.total_base_count,
            }
            | members(self, optional=("generated_from",)),
            "etag": {"algorithm": "FASTQ_MD5up"} | {slot: file.md5 for slot, file in self.files.items()},
        }


@dataclass(frozen=True)
class ReadSetFile:
    """One file of a read set: `s3_uri` is the one place its object's location is decided."""

    s3_uri: str  # s3://<access point alias>/<account>/sequenceStore/<id>/readSet/<readSetId>/<name>
    content_length: int
    md5: str

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        bucket, key = _S3_URI.match(self.s3_uri).groups()  # type: ignore[union-attr]
        return bucket, key


@dataclass
class ImportSource:
    request: dict[str, Any]
    status: str = "NOT_STARTED"
    status_message: str | None = None
    read_set_id: str | None = None

    def detail(self) -> dict[str, Any]:
        requested = {key: value for key, value in self.request.items() if value is not None}
        return requested | members(self, "status", optional=("status_message", "read_set_id"))


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
        return members(
            self,
            *("id", "sequence_store_id", "status", "creation_time"),
            optional=("role_arn", "completion_time"),
        )


class OmicsBackend(BaseBackend):
    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.sequence_stores: dict[str, SequenceStore] = {}
        self.read_sets: dict[str, ReadSet] = {}
        self.import_jobs: dict[str, Job] = {}
        self.activation_jobs: dict[str, Job] = {}
        self.client_tokens: dict[tuple[str, str], str] = {}
        self.lock = threading.RLock()

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
        problems = import_source_violations(sources)
        if problems:
            count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected"
            raise ValidationException(f"{count}: {'; '.join(problems)}")
        job = Job(
            id=_numeric_id(),
            sequence_store_id=store_id,
            role_arn=role_arn,
            creation_time=_now(),
            sources=[ImportSource(request=dict(source)) for source in sources],
        )
        job, created = self._register_job(self.import_jobs, "import", client_token, job)
        if created:
            _run_in_background(self._run_import, job)
        return job, created

    def get_import_job(self, store_id: str, job_id: str) -> Job:
        return self._find_job(self.import_jobs, "Import", store_id, job_id)

    def _register_job(
        self, jobs: dict[str, Job], kind: str, client_token: str | None, job: Job
    ) -> tuple[Job, bool]:
        """Record a new job, or return the one an earlier request with the same clientToken
        started (AWS idempotency tokens); whether `job` is the one recorded."""
        token = (job.sequence_store_id, f"{kind}:{client_token}") if client_token else None
        with self.lock:
            if token in self.client_tokens:
                return jobs[self.client_tokens[token]], False
            jobs[job.id] = job
            if token is not None:
                self.client_tokens[token] = job.id
        return job, True

    def _find_job(self, jobs: dict[str, Job], kind: str, store_id: str, job_id: str) -> Job:
        self.get_sequence_store(store_id)
        job = jobs.get(job_id)
        if job is None or job.sequence_store_id != store_id:
            raise ResourceNotFoundException(f"{kind} job {job_id} not found in sequence store {store_id}")
        return job

    def _run_import(self, job: Job) -> None:
        store = self.get_sequence_store(job.sequence_store_id)
        self._set_status(job, "IN_PROGRESS", IMPORT_EVENT, "importJob")
        _state.released["import"].wait()
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
        files: dict[str, ReadSetFile] = {}
        contents: dict[str, bytes] = {}
        reads = bases = 0
        s3 = s3_backends[self.account_id]["aws"]
        for slot, uri in sorted(request["sourceFiles"].items()):
            data = self._read_source(uri)
            slot_reads, slot_bases, md5 = validate_fastq_gz(data, uri)
            reads, bases = reads + slot_reads, bases + slot_bases
            name = slot if _state.read_set_file_names == "source" else uri.rsplit("/", 1)[-1]
            files[slot] = ReadSetFile(f"{store.s3_uri}readSet/{read_set_id}/{name}", len(data), md5)
            contents[slot] = data
        for slot, file in files.items():
            s3.put_object(*file.bucket_and_key, contents[slot])
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
            tags=dict(request.get("tags") or {}),
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
        out = read_set.summary() | {"creationJobId": read_set.creation_job_id}
        out["files"] = {
            slot: {
                "totalParts": 1,
                "partSize": file.content_length,
                "contentLength": file.content_length,
                "s3Access": {"s3Uri": file.s3_uri},
            }
            for slot, file in read_set.files.items()
        }
        return out

    def tags_of(self, resource_arn: str) -> dict[str, str]:
        """ListTagsForResource: a sequence store's or a read set's tags."""
        with self.lock:
            for resource in [*self.sequence_stores.values(), *self.read_sets.values()]:
                if resource.arn == resource_arn:
                    return dict(resource.tags)
        raise ResourceNotFoundException(f"Resource {resource_arn} not found")

    def archive_read_set(self, read_set: ReadSet) -> None:
        """What HealthOmics does to read sets unread for 30 days: objects become unreadable."""
        from moto.s3.models import s3_backends

        s3 = s3_backends[self.account_id]["aws"]
        with self.lock:
            if read_set.status != "ACTIVE":
                return
            for file in read_set.files.values():
                read_set.archived_objects[file.s3_uri] = s3.get_object(*file.bucket_and_key).value
                s3.delete_object(*file.bucket_and_key)
            read_set.status = "ARCHIVED"

    # --- activation jobs -------------------------------------------------------------------

    def start_read_set_activation_job(
        self, store_id: str, read_set_ids: list[str], client_token: str | None
    ) -> Job:
        for read_set_id in read_set_ids:
            self.get_read_set(store_id, read_set_id)
        job = Job(
            id=_numeric_id(),
            sequence_store_id=store_id,
            creation_time=_now(),
            sources=[{"readSetId": read_set_id, "status": "NOT_STARTED"} for read_set_id in read_set_ids],
        )
        with self.lock:  # registered and ACTIVATING as one step, before the job's thread runs
            job, created = self._register_job(self.activation_jobs, "activation", client_token, job)
            if not created:
                return job
            for read_set_id in read_set_ids:
                if self.read_sets[read_set_id].status == "ARCHIVED":
                    self.read_sets[read_set_id].status = "ACTIVATING"
        _run_in_background(self._run_activation, job)
        return job

    def get_activation_job(self, store_id: str, job_id: str) -> Job:
        return self._find_job(self.activation_jobs, "Activation", store_id, job_id)

    def _run_activation(self, job: Job) -> None:
        from moto.s3.models import s3_backends

        s3 = s3_backends[self.account_id]["aws"]
        self._set_status(job, "IN_PROGRESS", ACTIVATION_EVENT, "activationJob")
        _state.released["activation"].wait()
        failure = _state.take_activation_failure()
        if failure is not None:  # the read sets stay archived
            for source in job.sources:
                with self.lock:
                    read_set = self.read_sets[source["readSetId"]]
                    if read_set.status == "ACTIVATING":
                        read_set.status = "ARCHIVED"
                source["status"], source["statusMessage"] = "FAILED", failure
            self._set_status(job, "FAILED", ACTIVATION_EVENT, "activationJob", failure)
            return
        for source in job.sources:
            read_set = self.read_sets[source["readSetId"]]
            with self.lock:
                # An already active read set needs nothing: the source simply finishes; an
                # archived one comes back to the same URI ("restored to the same URI path").
                for file in read_set.files.values():
                    if file.s3_uri in read_set.archived_objects:
                        s3.put_object(*file.bucket_and_key, read_set.archived_objects[file.s3_uri])
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


omics_backends = BackendDict(OmicsBackend, "omics")


# --- module state: the event bus and the background job threads ------------------------------
# moto creates backends lazily, per account and Region (BackendDict), so what they share with the
# server that runs them lives here; aws_server.py sets it up and tears it down.


READ_SET_FILE_NAMES = ("upload", "source")  # the uploaded file's name, or the slot (source1)


def _released() -> dict[str, threading.Event]:
    """Per job kind, set while that kind's jobs may run to their end."""
    released = {"import": threading.Event(), "activation": threading.Event()}
    for event in released.values():
        event.set()
    return released


@dataclass
class _State:
    events: EventBus | None = None
    threads: list[threading.Thread] = field(default_factory=list)
    read_set_file_names: str = "upload"
    released: dict[str, threading.Event] = field(default_factory=_released)
    activation_failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_activation_failure(self) -> str | None:
        with self.lock:
            return self.activation_failures.pop(0) if self.activation_failures else None


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


def configure(events: EventBus, read_set_file_names: str = "upload") -> None:
    """Send the jobs' status-change events to `events` (the server's bus); name read-set files
    after the uploaded file ("upload") or after their slot ("source": `source1`)."""
    if read_set_file_names not in READ_SET_FILE_NAMES:
        raise ValueError(
            f"read_set_file_names must be one of {READ_SET_FILE_NAMES}, not {read_set_file_names!r}"
        )
    _state.events = events
    _state.read_set_file_names = read_set_file_names


def reset() -> None:
    """Forget every sequence store, read set and job (each server starts with an empty account)."""
    shutdown()
    omics_backends.clear()


def hold_jobs(*kinds: str) -> None:
    """Jobs of these kinds ("import", "activation"; default both) started from now on, and those
    not yet past IN_PROGRESS, wait there until release_jobs() (test hook)."""
    for kind in kinds or tuple(_state.released):
        _state.released[kind].clear()


def release_jobs() -> None:
    """Let held import and activation jobs finish."""
    for released in _state.released.values():
        released.set()


def fail_activations(times: int = 1, message: str = "Read set activation failed") -> None:
    """The next `times` activation jobs end FAILED, each source FAILED with `message` (test hook)."""
    with _state.lock:
        _state.activation_failures.extend([message] * times)


def shutdown(timeout_s: float = 10.0) -> None:
    """Wait up to `timeout_s` in all for running import/activation threads (they are short) and
    forget the event sink."""
    release_jobs()
    with _state.lock:
        _state.activation_failures.clear()
    deadline = time.monotonic() + timeout_s
    for thread in _state.threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    # One still running is waited for again by the next reset(), before the backends are cleared.
    _state.threads = [thread for thread in _state.threads if thread.is_alive()]
    _state.events = None
    _state.read_set_file_names = "upload"


def archive_read_sets(
    sequence_store_id: str,
    read_set_ids: list[str] | None = None,
    account_id: str = ACCOUNT_ID,
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
