"""Streaming FASTA(.gz) validation and conversion to FASTQ tiles, chunk by chunk.

Memory is bounded by the chunk size, never by the file: bytes arrive in chunks (S3 streaming
body), gzip is inflated with a cap on each output piece, and the parser keeps only the current
header line, one partial tile and a compact table of record-id digests.

Speed: the work per chunk is C-level bytes operations (`find`, `count`, `translate`); Python
code runs once per record and once per chunk, never per character or per line. Headers are found
with a one-byte `find(b">")` (memchr) and checked for a preceding newline: a two-byte
`find(b"\n>")` took a quarter of the parse time. A problem is located (line and column) only on
the error path, where speed does not matter.

What text is accepted besides LF lines: CRLF (the `\r` is whitespace to the sequence and
stripped from headers), classic-Mac CR-only line ends (detected on the first line, then every
`\r` is read as `\n`), and a UTF-8 byte-order mark before the first header (Windows editors
write one).

Hand-written rather than Biopython's `SimpleFastaParser`, which splits lines and joins strings
in Python: on the same 64 MiB of FASTA it parsed 107 MB per CPU-second without validating or
tiling anything, this parser 403 doing both (`python bench/bench_ingest.py --components`,
docs/benchmarks.md), and ingest needs >= 150 MB/s per core including compression.
"""

from __future__ import annotations

import hashlib
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pipeline.dna_alphabet import INVALID_BYTE, NORMALIZE_TABLE, WHITESPACE, normalize_bases
from pipeline.ingest.fastq_tiles import TILE_LEN, FastqTileWriter

MAX_HEADER_BYTES = 64 * 1024
INFLATE_PIECE_BYTES = 4 * 1024 * 1024  # cap on one piece of inflated output (gzip bombs stay bounded)
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"

# Letters that occur in protein sequences but are not IUPAC nucleotide codes.
PROTEIN_ONLY_LETTERS = frozenset(b"EFIJLOPQXZefijlopqxz*")
KNOWN_BINARY_FORMATS = {
    b"BAM\x01": "a BAM file",
    b"PK\x03\x04": "a ZIP archive",
    b"BZh": "a bzip2 file",
    b"\xfd7zXZ": "an xz file",
    b"\x28\xb5\x2f\xfd": "a zstd file",
    b"CRAM": "a CRAM file",
    b"\x89HDF": "an HDF5 file",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
}


@dataclass
class InvalidSequenceFile(Exception):
    """An upload that cannot be ingested (bad FASTA or flat file): what is wrong, where, and what
    the user should do."""

    problem: str
    action: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.problem}; {self.action}"


@dataclass(frozen=True)
class SequenceSummary:
    """What an ingested file held; flat files add what their records say about the organism."""

    records: int
    bases: int
    lines: int
    first_record_id: str
    file_format: str = "FASTA"
    organisms: tuple[str, ...] = ()  # distinct values, in order of first appearance
    taxonomy_ids: tuple[str, ...] = ()
    molecule_types: tuple[str, ...] = ()


class SeenRecordIds:
    """Set of record ids in 16 bytes per id: an open-addressing table of 64-bit BLAKE2b digests.

    A Python set of the ids would cost ~100 bytes each, i.e. hundreds of MB for a FASTA of
    millions of short records. Two different ids share a 64-bit digest with probability ~n^2/2^65
    (1e-8 for a million ids), so a false "duplicate" is not a practical concern.
    """

    def __init__(self) -> None:
        self._slots = array("Q", bytes(8 * 1024))
        self._used = 0

    def add(self, record_id: bytes) -> bool:
        """Adds the id; False if it was already present."""
        digest = int.from_bytes(hashlib.blake2b(record_id, digest_size=8).digest(), "little") or 1
        if self._insert(self._slots, digest):
            self._used += 1
            if self._used * 2 > len(self._slots):
                self._grow()
            return True
        return False

    @staticmethod
    def _insert(slots: array, digest: int) -> bool:
        mask = len(slots) - 1
        i = digest & mask
        while True:
            current = slots[i]
            if current == 0:
                slots[i] = digest
                return True
            if current == digest:
                return False
            i = (i + 1) & mask

    def _grow(self) -> None:
        bigger = array("Q", bytes(16 * len(self._slots)))
        for digest in self._slots:
            if digest:
                self._insert(bigger, digest)
        self._slots = bigger


def _first_line_is_complete(opening: bytearray) -> bool:
    """Whether the opening bytes show how lines end: a LF, a CR with the byte after it, or more
    than a header may hold (the header check then reports it)."""
    first_lf, first_cr = opening.find(b"\n"), opening.find(b"\r")
    return (
        first_lf >= 0 or 0 <= first_cr < len(opening) - 1 or len(opening) > MAX_HEADER_BYTES + len(UTF8_BOM)
    )


def bad_base(value: int, position: str, record_id: str) -> tuple[str, str]:
    """(problem, action) for a sequence byte that is not IUPAC DNA; `position` says where it is."""
    if value in PROTEIN_ONLY_LETTERS:
        problem = (
            f"{_describe_byte(value)} ({position}) of record {record_id!r} is not a nucleotide: "
            "this looks like a protein sequence"
        )
        return problem, "upload DNA sequences (IUPAC nucleotide codes ACGTN/RYKMSWBDHV)"
    if value in b"Uu":
        return f"'U' ({position}) of record {record_id!r}: RNA, not DNA", "convert U to T before uploading"
    if value in b"-.":
        return (
            f"gap character {chr(value)!r} ({position}) in record {record_id!r}",
            "remove alignment gaps; upload unaligned sequences",
        )
    return (
        f"{_describe_byte(value)} ({position}) of record {record_id!r} is not an IUPAC nucleotide code",
        "sequence lines may hold only ACGTN/RYKMSWBDHV (any case); headers start with '>'",
    )


def _describe_byte(value: int) -> str:
    char = chr(value)
    return repr(char) if char.isprintable() and value < 128 else f"byte 0x{value:02x}"


class FastaToFastq:
    """Feed decoded FASTA bytes in chunks of any size; get FASTQ tile bytes back.

    `feed()` and `finish()` raise InvalidSequenceFile with the line number at the first problem.
    """

    def __init__(self, tile_len: int = TILE_LEN) -> None:
        self._writer = FastqTileWriter(tile_len)
        self._seen = SeenRecordIds()
        self._line = 1  # line number of the byte at the current position
        self._at_line_start = True
        self._column_offset = 0  # bytes of the current line that earlier chunks already held
        self._header: bytearray | None = None  # header line being read (after '>')
        self._header_line = 0
        self._record_id: str | None = None
        self._record_line = 0
        self._records = 0
        self._bases = 0
        self._first_record_id = ""
        self._started = False
        # The file's first bytes, held until its first line break is seen: that tells whether
        # line ends are CR-only and lets a byte-order mark be dropped (None once decided).
        self._opening: bytearray | None = bytearray()
        self._cr_only = False
        self._line_end = b"\n"  # b"\r\n" for CRLF files (from the first line)

    def feed(self, chunk: bytes) -> bytes:
        if self._opening is not None:
            self._opening += chunk
            if not _first_line_is_complete(self._opening):
                return b""
            chunk = self._begin()
        elif self._cr_only:
            chunk = chunk.replace(b"\r", b"\n")
        return self._parse(chunk)

    def finish(self) -> tuple[bytes, SequenceSummary]:
        opening = self._parse(self._begin()) if self._opening is not None else b""
        if not self._started:
            raise InvalidSequenceFile(
                "the file is empty (0 bytes)", "upload a FASTA file with at least one record"
            )
        if self._header is not None:  # last line was a header without a trailing newline
            self._start_record()
        tail = opening + self._end_record()
        if self._records == 0:
            raise InvalidSequenceFile(
                "the file contains no FASTA records (only blank lines)",
                "upload a FASTA file with at least one '>' record",
            )
        lines = self._line - (1 if self._at_line_start else 0)
        return tail, SequenceSummary(self._records, self._bases, lines, self._first_record_id)

    # -- internals -------------------------------------------------------------------------

    def _begin(self) -> bytes:
        """The opening bytes, decided: BOM dropped, binary formats refused, CR-only line ends read as LF."""
        opening = bytes(self._opening or b"")
        self._opening = None
        self._started = bool(opening)
        opening = opening.removeprefix(UTF8_BOM)
        if opening:
            self._check_file_start(opening)
        first_cr, first_lf = opening.find(b"\r"), opening.find(b"\n")
        self._cr_only = first_cr >= 0 and (first_lf < 0 or first_cr + 1 < first_lf)
        self._line_end = b"\r\n" if first_cr >= 0 and first_cr + 1 == first_lf else b"\n"
        return opening.replace(b"\r", b"\n") if self._cr_only else opening

    def _parse(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        pos, size = 0, len(chunk)
        while pos < size:
            if self._header is not None:
                newline = chunk.find(b"\n", pos)
                stop = size if newline < 0 else newline
                self._header += chunk[pos:stop]
                if len(self._header) > MAX_HEADER_BYTES:
                    raise InvalidSequenceFile(
                        f"header line is longer than {MAX_HEADER_BYTES} bytes",
                        "check that the file is FASTA text (a '>' header line, then sequence lines)",
                        self._header_line,
                    )
                if newline < 0:
                    break
                self._start_record()
                pos = newline + 1
                self._line += 1
                self._at_line_start = True
                continue
            if self._at_line_start and chunk[pos] == 0x3E:  # '>' at the start of a line: a header
                out.append(self._end_record())
                self._header = bytearray()
                self._header_line = self._line
                pos += 1
                continue
            # Sequence up to the next '>' that starts a line; a '>' inside a line stays in the
            # segment, where the nucleotide check reports it.
            next_gt = chunk.find(b">", pos)
            if next_gt < 0:
                stop = size
            elif next_gt > pos and chunk[next_gt - 1] == 0x0A:
                stop = next_gt
            else:
                stop = next_gt + 1
            segment = chunk[pos:stop]
            fastq, newlines = self._sequence(segment)
            out.append(fastq)
            self._line += newlines
            last_newline = segment.rfind(b"\n")
            self._column_offset = len(segment) - last_newline - 1 + (0 if newlines else self._column_offset)
            self._at_line_start = segment.endswith(b"\n")
            pos = stop
        return b"".join(out)

    def _check_file_start(self, chunk: bytes) -> None:
        for magic, what in KNOWN_BINARY_FORMATS.items():
            if chunk.startswith(magic):
                raise InvalidSequenceFile(
                    f"this is binary data ({what}), not FASTA text",
                    "upload FASTA (.fa/.fasta/.fna, optionally gzip-compressed)",
                    1,
                )
        if b"\x00" in chunk[:65536]:
            raise InvalidSequenceFile(
                "this is binary data (it contains NUL bytes), not FASTA text",
                "upload FASTA (.fa/.fasta/.fna, optionally gzip-compressed)",
                chunk[: chunk.index(b"\x00")].count(b"\n") + 1,
            )

    def _start_record(self) -> None:
        header = bytes(self._header or b"").rstrip(b"\r")
        self._header = None
        try:
            text = header.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidSequenceFile(
                f"header is not UTF-8 text (byte 0x{header[err.start]:02x} at column {err.start + 2})",
                "check that the file is FASTA text, not binary data",
                self._header_line,
            ) from None
        fields = text.split(None, 1)
        if not fields:
            raise InvalidSequenceFile(
                "header '>' has no record id",
                "give every record an id right after '>' (e.g. '>chr1 description')",
                self._header_line,
            )
        record_id = fields[0]
        if not self._seen.add(record_id.encode()):
            raise InvalidSequenceFile(
                f"record id {record_id!r} appears twice in this file",
                "give every record a unique id (the first word after '>')",
                self._header_line,
            )
        self._record_id = record_id
        self._record_line = self._header_line
        self._records += 1
        if self._records == 1:
            self._first_record_id = record_id
        self._writer.start_record(record_id)

    def _end_record(self) -> bytes:
        if self._record_id is None:
            return b""
        if self._writer.bases_in_record == 0:
            raise InvalidSequenceFile(
                f"record {self._record_id!r} has no sequence",
                "remove the empty record or add its sequence lines below the header",
                self._record_line,
            )
        self._bases += self._writer.bases_in_record
        self._record_id = None
        return self._writer.end_record()

    def _sequence(self, segment: bytes) -> tuple[bytes, int]:
        """FASTQ bytes that the segment's bases complete, and the number of line breaks in it."""
        if self._record_id is None:
            if segment.translate(None, WHITESPACE):
                self._raise_not_fasta(segment)
            return b"", segment.count(b"\n")
        # Fast path: delete only the file's line end. For LF files the bytes removed are then the
        # line count, and no `count` pass is needed (a sixth of the parse time). Any other
        # whitespace maps to INVALID in NORMALIZE_TABLE, which sends the segment down the general
        # path below.
        bases = segment.translate(NORMALIZE_TABLE, self._line_end)
        if INVALID_BYTE in bases:
            bases = normalize_bases(segment)  # blanks inside lines, mixed line ends, or a bad byte
            if INVALID_BYTE in bases:
                self._raise_bad_sequence(segment)
            newlines = segment.count(b"\n")
        elif self._line_end == b"\n":
            newlines = len(segment) - len(bases)
        else:
            newlines = segment.count(b"\n")
        return (self._writer.add_bases(bases) if bases else b""), newlines

    def _raise_not_fasta(self, segment: bytes) -> None:
        line_no = self._line
        for line in segment.split(b"\n"):
            stripped = line.strip()
            if stripped:
                shown = stripped[:40].decode("utf-8", "replace")
                if stripped.startswith(b"@"):
                    hint = "this looks like FASTQ; upload FASTA ('>' headers) instead"
                elif stripped.startswith(b"LOCUS"):
                    hint = (
                        "this looks like a GenBank flat file; name it .gb, .gbk or .gbff to upload it as one"
                    )
                elif stripped.startswith(b"ID   "):
                    hint = "this looks like an EMBL flat file; name it .embl to upload it as one"
                else:
                    hint = "a FASTA file starts with a header line '>record_id', followed by sequence lines"
                raise InvalidSequenceFile(
                    f"expected a FASTA header starting with '>' but found {shown!r}", hint, line_no
                )
            line_no += 1

    def _raise_bad_sequence(self, segment: bytes) -> None:
        line_no, offset = self._line, self._column_offset
        for line in segment.split(b"\n"):
            bad = normalize_bases(line).find(INVALID_BYTE)
            if bad >= 0:
                stripped = line.translate(None, WHITESPACE)
                value = stripped[bad]
                column = offset + line.index(bytes([value])) + 1
                problem, action = bad_base(value, f"column {column}", self._record_id or "")
                raise InvalidSequenceFile(problem, action, line_no)
            line_no, offset = line_no + 1, 0
        raise AssertionError("invalid byte not found again")  # pragma: no cover


def inflate_if_gzip(raw_chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass plain bytes through; inflate gzip (by magic bytes, also multi-member/bgzip) in bounded pieces.

    Raises InvalidSequenceFile for corrupt or truncated gzip.
    """
    chunks = iter(raw_chunks)
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 2:
            break
    if not head.startswith(GZIP_MAGIC):
        if head:
            yield head
        yield from chunks
        return

    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    consumed = 0

    def inflate(data: bytes) -> Iterator[bytes]:
        nonlocal inflater, consumed
        while data:
            try:
                piece = inflater.decompress(data, INFLATE_PIECE_BYTES)
            except zlib.error as err:
                raise InvalidSequenceFile(
                    f"the gzip data is corrupt after {consumed:,} compressed bytes ({err})",
                    "re-compress the FASTA with gzip and upload it again",
                ) from None
            if piece:
                yield piece
            if inflater.unconsumed_tail:
                data = inflater.unconsumed_tail
            elif inflater.eof:
                data = inflater.unused_data
                if data.strip(b"\x00"):  # another gzip member follows (bgzip, `cat a.gz b.gz`)
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
                else:
                    data = b""  # trailing zero padding is tolerated, as gzip(1) does
            else:
                data = b""

    consumed = len(head)
    yield from inflate(head)
    for chunk in chunks:
        consumed += len(chunk)
        yield from inflate(chunk)
    if not inflater.eof:
        raise InvalidSequenceFile(
            f"the gzip stream is truncated (it ends after {consumed:,} compressed bytes without its trailer)",
            "the upload was probably cut short: upload the complete .gz file again",
        )
