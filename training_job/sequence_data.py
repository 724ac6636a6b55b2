"""Training data: read sequences, rejoin FASTQ tiles, split train/validation, sample token windows.

Sources (`load_records`):
- a SageMaker channel directory or any local directory, walked recursively (HealthOmics read
  sets sit at `<prefix>readSet/<readSetId>/<file>`, under names the service chooses);
- an `s3://bucket/prefix` (or a sequence store's access-point alias as the bucket): objects are
  streamed with boto3 line by line, never copied whole to disk;
- a single file.
Every file is opened and its format decided by content (`sequence_files.sniff_format`): gzip by
its magic bytes, then `>` FASTA, `@` FASTQ, `LOCUS` GenBank, `ID   ` EMBL, after an optional
UTF-8 byte-order mark; LF, CRLF and classic-Mac CR line ends alike. A file whose first bytes are
none of these (an index, a manifest) is skipped and counted in the log, unless its name claims a
sequence format (`x.fa`) or it was given as the source itself: then it is an error.
Every process of a distributed job reads the whole source (each needs every record to sample
the same global batches).

FASTQ files hold the tiles written by ingest (`functions/pipeline/ingest/fastq_tiles.py`): reads named
`<record_id>:<start>-<end>` (0-based, half-open). Tiles of one record may be spread over many
files; they are sorted and rejoined exactly. A gap or an overlap between tiles is an error that
names the record and the files/lines involved; an exact duplicate tile (same span, same bases,
e.g. the same file imported twice) is dropped and counted. A record whose last tile is missing
cannot be detected from the names alone.

Sequence is uppercased, IUPAC ambiguity codes become N and whitespace is dropped
(`hyenadna.alphabet`, the table ingest uses too); anything else is an error naming file, line and
column. Empty files and truncated gzip
streams are errors too; FASTA records without sequence are skipped and counted in the log.

Validation split: one held-out set that only grows (docs/contracts.md, "Validation split").
Each record is cut into blocks of `SPLIT_BLOCK_BASES` (1,024) bases from its start, the last one
possibly shorter. Block i of record `record_id` is held out when
`unit_hash("block", record_id, str(i))` (the first 8 bytes of
sha256(f"block\t{record_id}\t{i}") as a number in [0, 1)) is below `val_fraction`; a record
longer than one block where no block falls below gives up its full block with the smallest
hash, so every genome, however small, is measured. The record id is the FASTA header's first
word, which is also the `<record_id>` of the FASTQ tiles that ingest writes, so a genome has the
same held-out blocks whether it arrives as FASTA or as HealthOmics read sets, and whatever else
is in the data set, however it is ordered and however many processes train: adding data never
moves an old held-out block, nor makes one trainable. Training windows are drawn from the runs
between held-out blocks and never cross into one. The evaluation windows tile each run of
consecutive held-out blocks from its start in steps of `max_length` (the last one may be shorter
and is padded); a cap on their number (`val_windows(max_windows)`) keeps the windows with the
smallest unit_hash("eval window", record_id, start in record).

Windows: training batch `step` is drawn from a numpy Philox generator keyed by (seed, step), so
the data position is just the step number: a resumed job, or a job on another number of processes,
sees exactly the same global batches. A window start is uniform over all valid starts of all
training pieces (a piece shorter than `max_length` gives one padded window). With
`rc_probability` > 0, a window is reverse-complemented with that probability. Pad positions
carry label -100.

Tokens: each record is tokenised once with `hyenadna.encode_dna` (numpy lookup table) and
stored as uint8 in one buffer (1 byte per base: the whole data set is held in memory, ~3 GB for
a human genome); a batch is one strided gather from that buffer.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hyenadna import encode_dna
from hyenadna.alphabet import INVALID_BYTE, NUCLEOTIDE_IDS, PAD_ID, first_invalid_position, normalize_bases
from sequence_files import (
    FLAT_FILE_FORMATS,
    SNIFF_BYTES,
    UTF8_BOM,
    FlatFileError,
    format_from_name,
    read_flat_file,
    sniff_format,
    text_lines,
)

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
# Reverse complement swaps the token ids of A<->T and C<->G (N stays N), for bytes.translate.
_COMPLEMENT_TOKEN = bytes.maketrans(
    bytes(NUCLEOTIDE_IDS[base] for base in "ACGT"), bytes(NUCLEOTIDE_IDS[base] for base in "TGCA")
)
_ENCODE_CHUNK = 1 << 24  # bases per encode_dna call: bounds the int64 temporary to 128 MB


def _complement(tokens: np.ndarray) -> np.ndarray:
    """Complement uint8 token ids (bytes.translate: C speed, unlike a fancy-indexed lookup table)."""
    return np.frombuffer(tokens.tobytes().translate(_COMPLEMENT_TOKEN), dtype=np.uint8).reshape(tokens.shape)


class SequenceDataError(ValueError):
    """Input data that cannot be trained on; the message names the file/record and line."""


@dataclass(frozen=True)
class SequenceRecord:
    """One rejoined sequence: `tokens` are uint8 HyenaDNA token ids (A=7 C=8 G=9 T=10 N=11)."""

    record_id: str
    tokens: np.ndarray
    source: str


@dataclass(frozen=True)
class Tile:
    record_id: str
    start: int
    end: int
    bases: bytes
    location: str  # "file:line" of the read header, for error messages


def normalized_line(line: bytes, source: str, line_number: int) -> bytes:
    """Uppercase ACGTN bases of one sequence line; a non-nucleotide is an error naming file:line:column."""
    bases = normalize_bases(line)
    if INVALID_BYTE in bases:
        column = first_invalid_position(line)  # error path only
        raise SequenceDataError(
            f"{source}: line {line_number}, column {column + 1}: {line[column : column + 1]!r} is not a "
            "nucleotide (IUPAC DNA expected: A, C, G, T, N or an ambiguity code); fix or remove the file"
        )
    return bases


def tokenize(bases: bytes) -> np.ndarray:
    """ACGTN bytes -> uint8 token ids, through hyenadna.encode_dna in bounded chunks."""
    out = np.empty(len(bases), dtype=np.uint8)
    for offset in range(0, len(bases), _ENCODE_CHUNK):
        out[offset : offset + _ENCODE_CHUNK] = encode_dna(bases[offset : offset + _ENCODE_CHUNK])
    return out


# --------------------------------------------------------------------------------------------
# Reading files


def _numbered_lines(stream: BinaryIO, source: str) -> Iterator[tuple[int, bytes]]:
    """Lines with 1-based numbers; a corrupt or truncated gzip stream names the line it stopped at."""
    number = 0
    try:
        for number, line in enumerate(stream, start=1):  # noqa: B007 - number is used after the loop
            yield number, line
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise SequenceDataError(
            f"{source}: line {number + 1}: gzip stream is truncated or corrupt ({exc}); re-upload the file"
        ) from exc


def open_sequence_stream(raw: BinaryIO) -> BinaryIO:
    """A line-iterable binary stream, gunzipped if the content starts with the gzip magic bytes."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_RawAdapter(raw), 1 << 20)
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered), 1 << 20)
    return buffered


class _RawAdapter(io.RawIOBase):
    """Any object with read(n) (e.g. botocore StreamingBody) as a RawIOBase for BufferedReader."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_fasta(stream: BinaryIO, source: str) -> Iterator[tuple[str, bytes]]:
    """(record_id, ACGTN bases) per FASTA record; record_id is the header's first word.

    A record's lines are joined and normalized once, at C speed; only a record holding a
    non-nucleotide is rescanned line by line, to name the file, line and column. Kept
    hand-written rather than Biopython's `SimpleFastaParser` (`bench/bench_loader.py --readers`,
    docs/benchmarks.md): on 67 MB of FASTA this reads 148 MB per CPU-second, SimpleFastaParser
    (+ the same normalization) 151 without line numbers and 119 behind the line counting it needs
    to name the line of a bad base; and it would skip text before the first header without a word.
    """
    record_id: str | None = None
    lines: list[bytes] = []
    first_line = 0
    for number, line in _numbered_lines(stream, source):
        if line[:1] == b">":
            if record_id is not None:
                yield record_id, _record_bases(lines, source, first_line)
            words = line[1:].split()
            if not words:
                raise SequenceDataError(f"{source}: line {number}: FASTA header has no record id")
            record_id, lines, first_line = words[0].decode("utf-8", "replace"), [], number + 1
        elif record_id is not None:
            lines.append(line)
        elif line.strip():
            raise SequenceDataError(
                f"{source}: line {number}: sequence before the first '>' header; expected FASTA"
            )
    if record_id is not None:
        yield record_id, _record_bases(lines, source, first_line)


def _record_bases(lines: list[bytes], source: str, first_line: int) -> bytes:
    bases = normalize_bases(b"".join(lines))
    if INVALID_BYTE in bases:
        for offset, line in enumerate(lines):
            normalized_line(line, source, first_line + offset)  # raises at the first bad line
    return bases


def read_flat_file_records(stream: BinaryIO, source: str, file_format: str) -> Iterator[tuple[str, bytes]]:
    """(record_id, ACGTN bases) per GenBank/EMBL record (`sequence_files.read_flat_file`)."""
    try:
        for record in read_flat_file(text_lines(stream), file_format):
            bases = normalize_bases(record.sequence)
            bad = bases.find(INVALID_BYTE)
            if bad >= 0:
                letter = record.sequence[bad : bad + 1]
                raise SequenceDataError(
                    f"{source}: line {record.line_of_base(bad)}: base {bad + 1} of record "
                    f"{record.record_id!r} is {letter!r}, not a nucleotide (IUPAC DNA expected); "
                    "fix or remove the file"
                )
            yield record.record_id, bases
    except FlatFileError as error:
        raise SequenceDataError(f"{source}: {error}; {error.action}") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise SequenceDataError(
            f"{source}: gzip stream is truncated or corrupt ({exc}); re-upload the file"
        ) from exc


def read_fastq_tiles(stream: BinaryIO, source: str) -> Iterator[Tile]:
    """Tiles of a FASTQ file written by ingest (read names `<record_id>:<start>-<end>`)."""
    lines = _numbered_lines(stream, source)
    for number, header in lines:
        if not header.strip():
            continue
        if not header.startswith(b"@"):
            raise SequenceDataError(
                f"{source}: line {number}: expected a FASTQ read header starting with '@', got "
                f"{header[:40]!r}"
            )
        rest = [next(lines, None) for _ in range(3)]
        if rest[-1] is None:
            raise SequenceDataError(
                f"{source}: line {number}: FASTQ read is truncated (4 lines per read expected)"
            )
        (_, sequence), (plus_number, plus), (quality_number, quality) = rest
        if not plus.startswith(b"+"):
            raise SequenceDataError(f"{source}: line {plus_number}: expected the FASTQ '+' separator line")
        sequence, quality = sequence.rstrip(), quality.rstrip()
        if len(quality) != len(sequence):
            raise SequenceDataError(
                f"{source}: line {quality_number}: quality has {len(quality)} characters for "
                f"{len(sequence)} bases"
            )
        read_name = header[1:].split()[0].decode("utf-8", "replace") if header[1:].strip() else ""
        record_id, start, end = _parse_tile_name(read_name, source, number)
        if end - start != len(sequence):
            raise SequenceDataError(
                f"{source}: line {number}: read {read_name!r} spans {end - start} bases but holds "
                f"{len(sequence)}"
            )
        yield Tile(record_id, start, end, normalized_line(sequence, source, number + 1), f"{source}:{number}")


def _parse_tile_name(read_name: str, source: str, line_number: int) -> tuple[str, int, int]:
    record_id, _, span = read_name.rpartition(":")
    start_text, _, end_text = span.partition("-")
    if record_id and start_text.isdigit() and end_text.isdigit() and int(start_text) < int(end_text):
        return record_id, int(start_text), int(end_text)
    raise SequenceDataError(
        f"{source}: line {line_number}: read name {read_name!r} is not '<record_id>:<start>-<end>'; "
        "FASTQ input must be tiles written by hyenaflow ingest"
    )


def rejoin_tiles(tiles: Iterable[Tile]) -> list[tuple[str, bytes, str]]:
    """(record_id, bases, first tile location) per record, tiles sorted by start and joined exactly."""
    by_record: dict[str, list[Tile]] = {}
    for tile in tiles:
        by_record.setdefault(tile.record_id, []).append(tile)
    records, duplicates = [], 0
    for record_id, record_tiles in by_record.items():
        record_tiles.sort(key=lambda t: (t.start, t.end))
        pieces: list[bytes] = []
        previous: Tile | None = None
        for tile in record_tiles:
            expected = previous.end if previous else 0
            if previous and (tile.start, tile.end, tile.bases) == (
                previous.start,
                previous.end,
                previous.bases,
            ):
                duplicates += 1
                continue
            if tile.start > expected:
                raise SequenceDataError(
                    f"record {record_id!r}: bases {expected}-{tile.start} are missing (no tile covers them; "
                    f"next tile {tile.start}-{tile.end} at {tile.location}); re-import the record's file"
                )
            if tile.start < expected:
                raise SequenceDataError(
                    f"record {record_id!r}: tile {tile.start}-{tile.end} at {tile.location} overlaps tile "
                    f"{previous.start}-{previous.end} at {previous.location}; the same record id was imported "
                    "with different content: rename one of them"
                )
            pieces.append(tile.bases)
            previous = tile
        records.append((record_id, b"".join(pieces), record_tiles[0].location))
    if duplicates:
        log.warning(
            "dropped %d duplicate FASTQ tiles (same record, span and bases imported twice)", duplicates
        )
    return records


# --------------------------------------------------------------------------------------------
# Sources: directory, file, S3 prefix


def _local_files(root: Path) -> Iterator[tuple[str, BinaryIO]]:
    if root.is_file():
        yield str(root), root.open("rb")
        return
    if not root.is_dir():
        raise SequenceDataError(
            f"{root}: no such file or directory; pass --data a sequence file (FASTA, FASTQ, "
            "GenBank, EMBL) or a folder"
        )
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield str(path), path.open("rb")


def _s3_files(uri: str) -> Iterator[tuple[str, BinaryIO]]:
    import boto3  # only S3 sources need it

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/")  # "folder" placeholder objects
    ]
    for key in sorted(keys):
        yield f"s3://{bucket}/{key}", s3.get_object(Bucket=bucket, Key=key)["Body"]


def _open_and_sniff(raw: BinaryIO, source: str) -> tuple[BinaryIO, str | None, bytes]:
    """(stream, format, first bytes): gunzipped if the content is gzip, positioned after a UTF-8
    byte-order mark, CR-only line ends read as LF; the format from the content (None: not a
    sequence file), the first bytes for messages."""
    try:
        stream = open_sequence_stream(raw)
        head = stream.peek(SNIFF_BYTES)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise SequenceDataError(f"{source}: line 1: gzip stream is truncated or corrupt ({exc})") from exc
    file_format = sniff_format(head)
    if file_format is None:
        return stream, None, head[:SNIFF_BYTES]
    if head.startswith(UTF8_BOM):
        stream.read(len(UTF8_BOM))
        head = head[len(UTF8_BOM) :]
    first_cr, first_lf = head.find(b"\r"), head.find(b"\n")
    if first_cr >= 0 and (first_lf < 0 or first_cr + 1 < first_lf):  # classic Mac: CR alone
        stream = io.BufferedReader(_CrAsLf(stream), 1 << 20)
    return stream, file_format, head[:SNIFF_BYTES]


class _CrAsLf(io.RawIOBase):
    """A stream whose CR bytes read as LF (classic-Mac line ends for line iteration)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        data = self._stream.read(len(buffer)).replace(b"\r", b"\n")
        buffer[: len(data)] = data
        return len(data)


def load_records(source: str | os.PathLike[str]) -> list[SequenceRecord]:
    """Every record under `source` (file, folder or s3:// prefix): FASTA, GenBank and EMBL records
    and rejoined FASTQ tiles, each file's format decided by its content."""
    source = str(source)
    single_file = not source.startswith("s3://") and Path(source).is_file()
    files = _s3_files(source) if source.startswith("s3://") else _local_files(Path(source))
    sequences: list[tuple[str, bytes, str]] = []
    tiles: list[Tile] = []
    file_count = empty_records = 0
    ignored: list[str] = []
    for name, raw in files:
        with raw:
            stream, file_format, head = _open_and_sniff(raw, name)
            if file_format is None:
                claimed = format_from_name(name)
                if not (claimed or single_file):
                    ignored.append(name)
                    continue
                if not head:
                    raise SequenceDataError(f"{name}: file is empty; remove it or upload the full file")
                raise SequenceDataError(
                    f"{name}: line 1: starts with {head[:1]!r}, expected '>' (FASTA), '@' (FASTQ), "
                    "'LOCUS' (GenBank) or 'ID' (EMBL)"
                )
            file_count += 1
            if file_format == "fastq":
                tiles.extend(read_fastq_tiles(stream, name))
                continue
            if file_format in FLAT_FILE_FORMATS:
                records = read_flat_file_records(stream, name, file_format)
            else:
                records = read_fasta(stream, name)
            for record_id, bases in records:
                if bases:
                    sequences.append((record_id, bases, name))
                else:
                    empty_records += 1
    if ignored:
        log.info(
            "ignored %d files that are not FASTA, FASTQ, GenBank or EMBL by their first bytes, e.g. %s",
            len(ignored),
            ignored[0],
        )
    if empty_records:
        log.warning("skipped %d FASTA records with no sequence", empty_records)
    joined = sequences + rejoin_tiles(tiles)
    if not joined:
        raise SequenceDataError(f"{source}: no sequence found ({file_count} sequence files)")
    records_loaded = [SequenceRecord(rid, tokenize(bases), where) for rid, bases, where in joined]
    log.info(
        "loaded %d records, %d bases from %d files under %s",
        len(records_loaded),
        sum(len(r.tokens) for r in records_loaded),
        file_count,
        source,
    )
    return records_loaded


# --------------------------------------------------------------------------------------------
# Split and windows


# The split's unit: every record is cut into blocks of this many bases from its start (the last
# block may be shorter). A constant, not a hyperparameter: the held-out set must not move when
# --max-length or anything else changes. Changing it moves every held-out block, i.e. starts a new
# evaluation set (old figures stop being comparable, and old held-out bases may be trained on).
# 1,024 bases: the default window, and small enough that phiX174 (5,386 bases) keeps 4/5 of itself
# for training when one block is held out.
SPLIT_BLOCK_BASES = 1024


def unit_hash(*parts: str) -> float:
    """A number in [0, 1) from sha256 of the tab-joined parts: stable across processes, machines, versions."""
    digest = hashlib.sha256("\t".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out_blocks(record_id: str, length: int, val_fraction: float) -> list[int]:
    """Indices of the record's held-out blocks (see the module docstring: "Validation split")."""
    if val_fraction <= 0:
        return []
    blocks = -(-length // SPLIT_BLOCK_BASES)
    draws = [unit_hash("block", record_id, str(index)) for index in range(blocks)]
    held = [index for index, draw in enumerate(draws) if draw < val_fraction]
    if not held and blocks >= 2:
        # Every record longer than one block gives the evaluation set at least one full block,
        # so new data is always measured, however small the genome.
        held = [min(range(length // SPLIT_BLOCK_BASES), key=draws.__getitem__)]
    return held


def held_out_spans(record_id: str, length: int, val_fraction: float) -> list[tuple[int, int]]:
    """[start, end) spans of held-out bases in record coordinates: runs of consecutive held-out blocks."""
    spans: list[tuple[int, int]] = []
    for index in held_out_blocks(record_id, length, val_fraction):
        start, end = index * SPLIT_BLOCK_BASES, min(length, (index + 1) * SPLIT_BLOCK_BASES)
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def split_rule(val_fraction: float) -> dict[str, float | int]:
    """The split's parameters, recorded in the artifact: a warm start with another rule is warned about."""
    return {"block_bases": SPLIT_BLOCK_BASES, "val_fraction": val_fraction}


class WindowCorpus:
    """All tokens in one uint8 buffer, with the train pieces and held-out spans as [start, end) spans."""

    def __init__(self, records: list[SequenceRecord], max_length: int, val_fraction: float) -> None:
        self.max_length = max_length
        self.tokens = np.concatenate([r.tokens for r in records])
        self.record_ids = [r.record_id for r in records]
        lengths = np.array([len(r.tokens) for r in records], dtype=np.int64)
        # Where each record starts in the buffer; record_index() maps buffer positions back.
        self.record_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        train, val = [], []
        for record, offset, n in zip(records, self.record_starts.tolist(), lengths.tolist(), strict=True):
            previous_end = 0
            for start, end in held_out_spans(record.record_id, n, val_fraction):
                if start > previous_end:
                    train.append((offset + previous_end, offset + start))
                val.append((offset + start, offset + end))
                previous_end = end
            if n > previous_end:
                train.append((offset + previous_end, offset + n))
        if not train:
            raise SequenceDataError("no training bases left after the validation split; lower --val-fraction")
        self.train_spans = np.array(train, dtype=np.int64)
        self.val_spans = np.array(val, dtype=np.int64).reshape(-1, 2)
        # Number of window starts per train piece (a short piece still yields one padded window).
        self._starts_per_piece = np.maximum(
            1, self.train_spans[:, 1] - self.train_spans[:, 0] - max_length + 1
        )
        self._cumulative_starts = np.cumsum(self._starts_per_piece)
        # [n - max_length + 1, max_length] view of the buffer (no copy): window i starts at base i.
        self._sliding = sliding_window_view(self.tokens, min(max_length, len(self.tokens)))

    def record_index(self, positions: np.ndarray) -> np.ndarray:
        """Index into `record_ids` of the record holding each buffer position."""
        return np.searchsorted(self.record_starts, positions, side="right") - 1

    def trained_record_ids(self) -> list[str]:
        """Ids of the records that have training bases (a record can be held out whole)."""
        return sorted({self.record_ids[i] for i in self.record_index(self.train_spans[:, 0]).tolist()})

    @property
    def train_tokens(self) -> int:
        return int((self.train_spans[:, 1] - self.train_spans[:, 0]).sum())

    @property
    def val_tokens(self) -> int:
        return int((self.val_spans[:, 1] - self.val_spans[:, 0]).sum())

    def train_windows(self, step: int, count: int, seed: int, rc_probability: float) -> np.ndarray:
        """Global batch of `step`: int64 [count, 3] rows of (start, length, reverse_complement)."""
        # Philox keyed by (seed, step): an independent stream per step, ~3x cheaper to set up
        # than default_rng's SeedSequence (it runs once per optimizer step).
        rng = np.random.Generator(np.random.Philox(key=(seed % 2**64) * 2**64 + step))
        flat = rng.integers(0, self._cumulative_starts[-1], size=count)
        piece = np.searchsorted(self._cumulative_starts, flat, side="right")
        offset_in_piece = flat - (self._cumulative_starts[piece] - self._starts_per_piece[piece])
        starts = self.train_spans[piece, 0] + offset_in_piece
        lengths = np.minimum(self.max_length, self.train_spans[piece, 1] - starts)
        flip = rng.random(count) < rc_probability
        return np.stack([starts, lengths, flip.astype(np.int64)], axis=1)

    def val_windows(self, max_windows: int | None = None) -> np.ndarray:
        """Evaluation windows, int64 [n, 3] (start, length, 0) in buffer order: each held-out span tiled
        from its start in steps of max_length (the last piece may be shorter).

        With more than `max_windows`, the kept ones are those with the smallest
        unit_hash("eval window", record_id, start in record): a rule of each window alone, so a
        capped set is the same on every process and in every job over the same data.
        """
        rows = [
            (s, min(self.max_length, end - s), 0)
            for start, end in self.val_spans.tolist()
            for s in range(start, end, self.max_length)
        ]
        windows = np.array(rows, dtype=np.int64).reshape(-1, 3)
        if max_windows is not None and len(windows) > max_windows:
            records = self.record_index(windows[:, 0])
            draws = [
                unit_hash("eval window", self.record_ids[r], str(s - self.record_starts[r]))
                for s, r in zip(windows[:, 0].tolist(), records.tolist(), strict=True)
            ]
            windows = windows[np.sort(np.argsort(draws, kind="stable")[:max_windows])]
        return windows

    def gather(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, labels) int64 [len(windows), max_length] for rows of (start, length, rc)."""
        starts, lengths, flips = windows[:, 0], windows[:, 1], windows[:, 2].astype(bool)
        full = lengths == self.max_length
        if full.all():  # the common case: one strided gather, then fix the reverse-complemented rows
            window_tokens = self._sliding[starts]
        else:
            window_tokens = np.full((len(windows), self.max_length), PAD_ID, dtype=np.uint8)
            if full.any():
                window_tokens[full] = self._sliding[starts[full]]
        flip_full = np.flatnonzero(full & flips)
        if len(flip_full):
            window_tokens[flip_full] = _complement(window_tokens[flip_full, ::-1])
        for row in np.flatnonzero(~full):  # windows from pieces shorter than max_length (rare)
            tokens = self.tokens[starts[row] : starts[row] + lengths[row]]
            window_tokens[row, : lengths[row]] = _complement(tokens[::-1]) if flips[row] else tokens
        input_ids = window_tokens.astype(np.int64)
        labels = input_ids.copy()
        if not full.all():
            labels[input_ids == PAD_ID] = IGNORE_INDEX
        return input_ids, labels
