"""The checks HealthOmics makes on a FASTQ source when it imports it into a read set.

Gzip only, 4-line records (`@name`, IUPAC sequence, `+`, Phred+33 quality of the same length),
reads no longer than MAX_READ_LENGTH. A failing source raises SourceInvalid naming the file and
the line of the first problem, which the import job reports as the source's statusMessage.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator

from hyenaflow.local.omics.exceptions import SourceInvalid

# Longest FASTQ read accepted. HealthOmics takes long reads (ONT/PacBio) in FASTQ; our tiles are
# 10 kb (functions/pipeline/ingest/fastq_tiles.py), far below this.
MAX_READ_LENGTH = 100_000
_IUPAC_BYTES = b"ACGTURYSWKMBDHVNacgturyswkmbdhvn.-"
_PHRED33_BYTES = bytes(range(33, 127))


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
