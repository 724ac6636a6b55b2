"""Ingest one uploaded FASTA or GenBank/EMBL flat file (plain or gzip): validate while streaming,
stage FASTQ.gz tiles, start one import.

Plain values and injected boto3 clients in, a JSON-able result out; the handler adds Powertools
and idempotency. Bad input is moved to rejected/ with a reason file and an SNS alert, and
nothing of it stays under staged/ or reaches HealthOmics. The name picks the parser: FASTA has
its own streaming parser (fasta_stream.py); flat files go through Biopython (flat_file_stream.py),
which is imported only when one arrives.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from pipeline.alerts import Alert
from pipeline.ingest.fasta_stream import FastaToFastq, InvalidSequenceFile, SequenceSummary, inflate_if_gzip
from pipeline.ingest.read_set_names import (
    MAX_READ_SET_DESCRIPTION,
    MAX_READ_SET_FIELD,
    read_set_field,
    reason_key,
    staged_key_prefix,
    tag_value,
)
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.staging import StagedFastqUpload, TooManySources
from pipeline.rate_limiter import process_rate_limiter
from pipeline.read_set_tags import MOLECULE_TYPE_TAG, ORGANISM_TAG, TAXONOMY_ID_TAG, joined
from pipeline.sequence_files import SUFFIX_FORMATS, format_from_name

INCOMING_PREFIX = "incoming/"
STAGED_PREFIX = "staged/"
REJECTED_PREFIX = "rejected/"
GENBANK_PREFIX = "incoming/genbank/"
INGESTED_FORMATS = ("fasta", "genbank", "embl")  # FASTQ is what ingest writes, not what it takes
READ_CHUNK_BYTES = 1024 * 1024
MAX_IMPORT_SOURCES = 100  # StartReadSetImportJob: sources list of 1..100 (botocore omics model)


@dataclass(frozen=True)
class UploadedObject:
    bucket: str
    key: str
    etag: str
    size: int | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def stem_and_format(key: str) -> tuple[str, str] | None:
    """`incoming/x/NC_1.1.gbk.gz` -> ('NC_1.1', 'genbank'); None unless the name ends in a FASTA
    (.fa .fasta .fna) or flat-file (.gb .gbk .gbff .embl) extension, optionally followed by .gz."""
    name = key.rsplit("/", 1)[-1]
    file_format = format_from_name(name)
    if file_format not in INGESTED_FORMATS:
        return None
    name = name[:-3] if name.lower().endswith(".gz") else name
    suffix = next(s for s, f in SUFFIX_FORMATS.items() if f == file_format and name.lower().endswith(s))
    return name[: -len(suffix)], file_format


def import_client_token(obj: UploadedObject) -> str:
    """Same object version -> same token, so HealthOmics itself refuses a second job for it."""
    return hashlib.sha256(f"{obj.bucket}/{obj.key}/{obj.etag}".encode()).hexdigest()[:64]


def ingest_uploaded_fasta(
    obj: UploadedObject, *, s3: Any, omics: Any, settings: IngestSettings, alert: Alert
) -> dict[str, Any]:
    if not obj.key.startswith(INCOMING_PREFIX) or obj.key.endswith("/"):
        return {"status": "skipped", "reason": f"{obj.key} is not a file under {INCOMING_PREFIX}"}
    named = stem_and_format(obj.key)
    if named is None:
        return reject_object(
            obj,
            InvalidSequenceFile(
                "the file name does not end in .fa, .fasta or .fna (FASTA) or .gb, .gbk, .gbff or "
                ".embl (GenBank/EMBL flat file), optionally followed by .gz",
                "rename the file with the extension of its format and upload it again",
            ),
            s3=s3,
            alert=alert,
        )
    stem, file_format = named
    if obj.size is not None and obj.size > settings.max_input_bytes:
        return reject_object(obj, _too_large(obj.size, settings), s3=s3, alert=alert)

    try:
        obj, body = _open_exact_version(s3, obj)
    except _ObjectGone as gone:
        return {"status": "skipped", "reason": str(gone)}
    if body["ContentLength"] > settings.max_input_bytes:
        body["Body"].close()
        return reject_object(obj, _too_large(body["ContentLength"], settings), s3=s3, alert=alert)

    staged = StagedFastqUpload(
        s3,
        settings.data_bucket,
        staged_key_prefix(STAGED_PREFIX, obj.key[len(INCOMING_PREFIX) :], stem, obj.etag.strip('"')),
        max_object_bytes=settings.max_source_bytes,
        max_objects=MAX_IMPORT_SOURCES,
        gzip_level=settings.staging_gzip_level,
    )
    try:
        summary, staged_keys = _stream_to_staging(body["Body"], staged, file_format)
    except (InvalidSequenceFile, TooManySources) as problem:
        staged.abort()
        if isinstance(problem, TooManySources):
            problem = InvalidSequenceFile(
                str(problem), "split the file into smaller ones (or raise MAX_SOURCE_BYTES)", None
            )
        return reject_object(obj, problem, s3=s3, alert=alert)
    except BaseException:
        staged.abort()
        raise
    finally:
        body["Body"].close()  # a rejected file may be half read: give the connection back

    job = start_read_set_import(obj, stem, summary, staged_keys, settings=settings, omics=omics)
    return {
        "status": "imported",
        "source": obj.uri,
        "importJobId": job["id"],
        "sequenceStoreId": settings.sequence_store_id,
        "stagedObjects": [f"s3://{settings.data_bucket}/{k}" for k in staged_keys],
        "format": summary.file_format,
        "records": summary.records,
        "bases": summary.bases,
        "fastqBytes": staged.fastq_bytes,
        "gzipBytes": staged.gzip_bytes,
        "gzip": staged.deflater,
    }


def _stream_to_staging(
    body: Any, staged: StagedFastqUpload, file_format: str = "fasta"
) -> tuple[SequenceSummary, list[str]]:
    raw_chunks: Iterator[bytes] = iter(lambda: body.read(READ_CHUNK_BYTES), b"")
    chunks = inflate_if_gzip(raw_chunks)
    if file_format == "fasta":
        parser = FastaToFastq()
        for chunk in chunks:
            staged.write(parser.feed(chunk))
        tail, summary = parser.finish()
        staged.write(tail)
    else:
        from pipeline.ingest.flat_file_stream import FlatFileToFastq  # flat files only

        converter = FlatFileToFastq(file_format)
        for fastq in converter.fastq(chunks):
            staged.write(fastq)
        assert converter.summary is not None
        summary = converter.summary
    return summary, staged.close()


def start_read_set_import(
    obj: UploadedObject,
    stem: str,
    summary: SequenceSummary,
    staged_keys: list[str],
    *,
    settings: IngestSettings,
    omics: Any,
) -> dict[str, Any]:
    """One StartReadSetImportJob for the file: one read set per staged source (usually one)."""
    is_genbank = obj.key.startswith(GENBANK_PREFIX)
    sample_id = read_set_field(settings.sample_id or stem)
    subject_id = read_set_field(settings.subject_id or stem)
    tags = {"hyenaflow:source": tag_value(obj.uri), "hyenaflow:etag": obj.etag.strip('"')}
    tags |= read_set_tags(summary)
    if is_genbank and summary.records == 1:  # a poll run's file holds many: its records' ids name them
        tags["hyenaflow:accession"] = tag_value(summary.first_record_id)
    sources = []
    for index, key in enumerate(staged_keys, start=1):
        part = "" if len(staged_keys) == 1 else f" part {index} of {len(staged_keys)}"
        sources.append(
            {
                "sourceFiles": {"source1": f"s3://{settings.data_bucket}/{key}"},
                "sourceFileType": "FASTQ",
                "subjectId": subject_id,
                "sampleId": sample_id,
                "generatedFrom": read_set_field(("GenBank " if is_genbank else "") + obj.uri[-100:]),
                "name": read_set_field(stem, MAX_READ_SET_FIELD - len(part)) + part,
                "description": read_set_description(summary),
                "tags": tags,
            }
        )
    process_rate_limiter("omics", settings.omics_tps_per_environment).wait()
    response = omics.start_read_set_import_job(
        sequenceStoreId=settings.sequence_store_id,
        roleArn=settings.omics_import_role_arn,
        clientToken=import_client_token(obj),
        sources=sources,
    )
    return {"id": response["id"], "status": response["status"]}


def read_set_description(summary: SequenceSummary) -> str:
    """What the read set holds, in the 255 characters HealthOmics allows (ReadSetDescription)."""
    text = (
        f"{summary.records} {summary.file_format} records, {summary.bases} bases, "
        f"first {summary.first_record_id}"
    )
    if summary.organisms:
        text += f"; organism {'; '.join(summary.organisms)}"
    if summary.taxonomy_ids:
        text += f" (taxon {', '.join(summary.taxonomy_ids)})"
    if summary.molecule_types:
        text += f"; {', '.join(summary.molecule_types)}"
    return read_set_field(text, MAX_READ_SET_DESCRIPTION)


def read_set_tags(summary: SequenceSummary) -> dict[str, str]:
    """Tags for what the records say about themselves (flat files), so the model registry can tell
    what a model was trained on; values within HealthOmics' 256 characters (TagValue)."""
    values = {
        "hyenaflow:format": summary.file_format,
        ORGANISM_TAG: joined(ORGANISM_TAG, summary.organisms),
        TAXONOMY_ID_TAG: joined(TAXONOMY_ID_TAG, summary.taxonomy_ids),
        MOLECULE_TYPE_TAG: joined(MOLECULE_TYPE_TAG, summary.molecule_types),
    }
    return {key: tag_value(value) for key, value in values.items() if value}


def reject_object(
    obj: UploadedObject, problem: InvalidSequenceFile, *, s3: Any, alert: Alert
) -> dict[str, Any]:
    """Move the upload to rejected/ (copy, then delete) next to a `.reason.json`, and alert."""
    relative = obj.key[len(INCOMING_PREFIX) :] if obj.key.startswith(INCOMING_PREFIX) else obj.key
    destination = REJECTED_PREFIX + relative
    message = f"{obj.key}: {problem}; file moved to {destination}"
    reason = {
        "source": obj.uri,
        "etag": obj.etag,
        "movedTo": f"s3://{obj.bucket}/{destination}",
        "line": problem.line,
        "problem": problem.problem,
        "action": problem.action,
        "message": message,
        "rejectedAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # Reason first, then copy, then delete: a retry after a crash at any step ends the same way.
    s3.put_object(
        Bucket=obj.bucket,
        Key=reason_key(destination),
        Body=json.dumps(reason, indent=2).encode(),
        ContentType="application/json",
    )
    s3.copy({"Bucket": obj.bucket, "Key": obj.key}, obj.bucket, destination)  # multipart copy past 5 GB
    s3.delete_object(Bucket=obj.bucket, Key=obj.key)
    alert(f"hyenaflow: rejected {relative}", reason)
    return {"status": "rejected", "source": obj.uri, "movedTo": reason["movedTo"], "message": message}


def _too_large(size: int, settings: IngestSettings) -> InvalidSequenceFile:
    return InvalidSequenceFile(
        f"the file is {size:,} bytes, over the limit of {settings.max_input_bytes:,} bytes (MAX_INPUT_BYTES)",
        "split it into smaller files, or raise MAX_INPUT_BYTES",
    )


class _ObjectGone(Exception):
    pass


def _open_exact_version(s3: Any, obj: UploadedObject) -> tuple[UploadedObject, dict[str, Any]]:
    """GetObject pinned to the event's ETag; tries the URL-decoded key if the literal one is absent."""
    candidates = [obj.key]
    if unquote_plus(obj.key) != obj.key:
        candidates.append(unquote_plus(obj.key))  # S3 event keys may arrive URL-encoded
    for key in candidates:
        try:
            kwargs = {"IfMatch": obj.etag} if obj.etag else {}
            response = s3.get_object(Bucket=obj.bucket, Key=key, **kwargs)
            return UploadedObject(
                obj.bucket, key, obj.etag or response["ETag"].strip('"'), obj.size
            ), response
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412"):
                raise _ObjectGone(
                    f"{obj.uri} changed since this event (ETag is no longer {obj.etag}); its own event handles it"
                ) from None
            if code not in ("NoSuchKey", "404"):
                raise
    raise _ObjectGone(f"{obj.uri} no longer exists (already ingested or rejected)")
