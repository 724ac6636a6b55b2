"""Names ingest derives from an upload's key, kept within what S3 and StartReadSetImportJob accept.

Limits (botocore omics model 2022-11-28; S3 object key rules):
- a source file is an `S3Uri`, pattern `s3://([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])/(.{1,1024})`:
  the key at most 1,024 characters, and no line break (`.` matches none). S3 itself allows
  1,024 bytes of UTF-8, which is never more characters, so a staged key is kept to 1,024 bytes.
  The bucket part always matches: it is the stack's data bucket, and S3 bucket names are 3-63
  characters of `[a-z0-9.-]`.
- `name`, `sampleId`, `subjectId`, `generatedFrom`: 1-127 characters; `description`: 1-255; tag
  values: 0-256. All but tags match `[\\p{L}\\p{M}\\p{Z}\\p{S}\\p{N}\\p{P}]+`: no control
  characters.

An upload whose key is longer, or holds characters those patterns refuse, gets shortened names:
a readable head of the original, then `~` and a hash of the whole original. The same upload
always gets the same names (a retried ingest stages to the same keys), and two different uploads
never share one. Every key can be shortened this way, so no upload is rejected for its name.
"""

from __future__ import annotations

import hashlib
import unicodedata

MAX_S3_KEY_BYTES = 1024
# StagedFastqUpload appends `.NNN.fastq.gz` to the prefix (NNN: source 001..100).
STAGED_SOURCE_SUFFIX_BYTES = len(".001.fastq.gz")
MAX_STAGED_FILE_NAME_BYTES = 100  # the staged file name stays readable, the folders carry the rest
DIGEST_CHARS = 16  # 64 bits of SHA-256: different keys sharing one is not a practical concern
MAX_READ_SET_FIELD = 127  # name, sampleId, subjectId, generatedFrom
MAX_READ_SET_DESCRIPTION = 255
MAX_TAG_VALUE = 256


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_CHARS]


def staged_key_prefix(staged_root: str, relative_key: str, stem: str, etag: str) -> str:
    """Where incoming/<relative_key>'s FASTQ sources go: `<root><folder><stem>/<etag>/<stem>`,
    or, when that is too long or not plain text, `<root><head>~<digest>/<etag>/<short stem>`."""
    folder = relative_key.rsplit("/", 1)[0] + "/" if "/" in relative_key else ""
    natural = f"{staged_root}{folder}{stem}/{etag}/{stem}"
    if _plain(natural) == natural and _utf8_len(natural) + STAGED_SOURCE_SUFFIX_BYTES <= MAX_S3_KEY_BYTES:
        return natural
    tail = f"~{digest(relative_key)}/{etag}/{_clip_utf8(_plain(stem), MAX_STAGED_FILE_NAME_BYTES)}"
    room = MAX_S3_KEY_BYTES - STAGED_SOURCE_SUFFIX_BYTES - _utf8_len(staged_root) - _utf8_len(tail)
    return f"{staged_root}{_clip_utf8(_plain(folder + stem), room)}{tail}"


def reason_key(destination: str, suffix: str = ".reason.json") -> str:
    """The reason file next to a rejected object; a shortened name when the key would pass 1,024 bytes
    (rejected/ is as long as incoming/, so the rejected object's own key always fits)."""
    key = destination + suffix
    if _utf8_len(key) <= MAX_S3_KEY_BYTES:
        return key
    tail = f"~{digest(destination)}{suffix}"
    return _clip_utf8(destination, MAX_S3_KEY_BYTES - _utf8_len(tail)) + tail


def read_set_field(text: str, max_chars: int = MAX_READ_SET_FIELD) -> str:
    """`text` as a read-set name/sampleId/subjectId/generatedFrom/description of at most `max_chars`."""
    plain = _plain(text)
    if plain == text and 1 <= len(text) <= max_chars:
        return text
    tail = f"~{digest(text)}"
    return plain[: max_chars - len(tail)] + tail


def tag_value(text: str) -> str:
    if len(text) <= MAX_TAG_VALUE:
        return text
    tail = f"~{digest(text)}"
    return text[: MAX_TAG_VALUE - len(tail)] + tail


def _plain(text: str) -> str:
    """Control, format and line/paragraph-separator characters become `_`: HealthOmics' patterns
    refuse them (`\\p{C}`), and `.` in the S3Uri pattern matches no line terminator."""
    return "".join(
        "_" if (category := unicodedata.category(char)).startswith("C") or category in ("Zl", "Zp") else char
        for char in text
    )


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _clip_utf8(text: str, max_bytes: int) -> str:
    """The longest head of `text` that is at most `max_bytes` of UTF-8 (never half a character)."""
    return text.encode("utf-8", "surrogatepass")[: max(0, max_bytes)].decode("utf-8", "ignore")
