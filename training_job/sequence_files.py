"""Sequence file formats: what a file is, and GenBank/EMBL flat files record by record.

One module for both readers of user files: the training job imports it as `sequence_files`, and
the ingest Lambda gets this very file as `pipeline.sequence_files` through a symlink (as it gets
the alphabet), so both accept and describe the same inputs.

- `sniff_format(head)`: the format from a file's first bytes (after gunzip), never from its name:
  a UTF-8 byte-order mark and blank lines are skipped, then `>` is FASTA, `@` FASTQ, `LOCUS`
  GenBank, `ID   ` EMBL. Anything else (an index, a manifest, JSON) is not a sequence file.
- `format_from_name(name)`: what a name claims (`.fa .fasta .fna .fq .fastq .gb .gbk .gbff
  .embl`, optionally `.gz`); a hint for error messages, not a decision.
- `read_flat_file(text, file_format)`: GenBank/EMBL records with their sequence and the organism,
  taxonomy id and molecule type, parsed by Biopython's INSDC scanner (the parser that
  `Bio.SeqIO.parse(handle, "genbank" | "embl")` runs). A problem raises FlatFileError with the
  line it is on; the scanner does not count lines, so a wrapper around the text does.

Standard library only at import: Biopython is imported by the first `read_flat_file` call, so
FASTA and FASTQ paths (and the Lambdas' cold start) never load it. `Bio.SeqIO` itself is not
imported: it loads `Bio.Align` and with it numpy (~0.25 s of CPU, and no Lambda imports numpy).
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, TextIO

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 64  # enough of a file's start for sniff_format (after a BOM and a few blank lines)

FORMAT_SIGNATURES = (  # first bytes of the first non-blank line -> format
    (b">", "fasta"),
    (b"@", "fastq"),
    (b"LOCUS", "genbank"),
    (b"ID   ", "embl"),
)
SUFFIX_FORMATS = {
    ".fa": "fasta",
    ".fasta": "fasta",
    ".fna": "fasta",
    ".fq": "fastq",
    ".fastq": "fastq",
    ".gb": "genbank",
    ".gbk": "genbank",
    ".gbff": "genbank",
    ".embl": "embl",
}
FLAT_FILE_FORMATS = {"genbank": "GenBank", "embl": "EMBL"}  # format -> the name users know
BASES_PER_SEQUENCE_LINE = 60  # GenBank ORIGIN and EMBL SQ blocks: 6 groups of 10 per line
_DECLARED_LENGTH = re.compile(r"\s(\d+)\s+(?:bp|BP|aa|AA)\b")  # '9609 bp' (LOCUS), '9609 BP.' (ID)


def sniff_format(head: bytes) -> str | None:
    """'fasta' | 'fastq' | 'genbank' | 'embl' from a file's first bytes, or None if it is none of them."""
    text = head.removeprefix(UTF8_BOM).lstrip(b" \t\r\n")
    for signature, file_format in FORMAT_SIGNATURES:
        if text.startswith(signature):
            return file_format
    return None


def format_from_name(name: str) -> str | None:
    """The format a file name claims (`x.gbk.gz` -> 'genbank'), or None."""
    lowered = name.rsplit("/", 1)[-1].lower().removesuffix(".gz")
    for suffix, file_format in SUFFIX_FORMATS.items():
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return file_format
    return None


def text_lines(binary: BinaryIO) -> TextIO:
    """A binary stream as text lines for read_flat_file: BOM dropped, LF/CRLF/CR line ends alike."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline=None)


@dataclass(frozen=True)
class FlatFileRecord:
    record_id: str  # the accession.version (VERSION / SV), as Bio.SeqIO gives it
    sequence: bytes  # the letters of the ORIGIN / SQ block, as written (not normalized)
    line: int  # the record's LOCUS / ID line
    sequence_line: int  # the ORIGIN / SQ line (0 if the record has none)
    organism: str | None
    taxonomy_id: str | None  # NCBI taxon id from the source feature's /db_xref="taxon:..."
    molecule_type: str | None  # e.g. 'DNA', 'genomic DNA', 'mRNA', 'protein'

    def line_of_base(self, index: int) -> int:
        """The line holding base `index` (0-based) in a standard ORIGIN / SQ block of 60 per line."""
        if not self.sequence_line:
            return self.line
        return self.sequence_line + 1 + index // BASES_PER_SEQUENCE_LINE


class FlatFileError(ValueError):
    """A GenBank/EMBL file that cannot be read: what is wrong and on which line."""

    def __init__(self, problem: str, line: int | None, action: str) -> None:
        super().__init__(f"line {line}: {problem}" if line else problem)
        self.problem, self.line, self.action = problem, line, action


class _CountedLines:
    """`readline()` over text, remembering the number of the last line read and where the current
    record and its sequence block began (the scanner reads by readline only)."""

    def __init__(self, text: TextIO, record_start: str, sequence_start: str) -> None:
        self._text = text
        self._record_start, self._sequence_start = record_start, sequence_start
        self.line = 0
        self.record_line = 0
        self.record_header = ""  # the LOCUS / ID line itself
        self.sequence_line = 0
        self.terminated = False  # the record's closing '//' line was read

    def readline(self) -> str:
        line = self._text.readline()
        if line:
            self.line += 1
            if line.startswith(self._record_start):
                self.record_line, self.record_header = self.line, line
                self.sequence_line, self.terminated = 0, False
            elif line.startswith(self._sequence_start):
                self.sequence_line = self.line
            elif line.startswith("//"):
                self.terminated = True
        return line


def read_flat_file(text: TextIO, file_format: str) -> Iterator[FlatFileRecord]:
    """The records of a GenBank ('genbank') or EMBL ('embl') flat file, one at a time.

    Raises FlatFileError naming the line: unparseable layout, a file without records, a record
    cut short (no closing `//`), one whose sequence block does not hold the length its LOCUS / ID
    line declares, a record without sequence (CONTIG/WGS master records) or a protein record.
    """
    from Bio import BiopythonParserWarning
    from Bio.GenBank.Scanner import EmblScanner, GenBankScanner

    kind = FLAT_FILE_FORMATS[file_format]
    if file_format == "genbank":
        scanner, lines = GenBankScanner(debug=0), _CountedLines(text, "LOCUS", "ORIGIN")
    else:
        scanner, lines = EmblScanner(debug=0), _CountedLines(text, "ID   ", "SQ   ")
    records = scanner.parse_records(lines)
    count = 0
    while True:
        try:
            with warnings.catch_warnings():
                # Layout quirks Biopython reads anyway (odd LOCUS spacing, old dates) are not errors here.
                warnings.simplefilter("ignore", BiopythonParserWarning)
                record = next(records)
        except StopIteration:
            break
        except Exception as error:  # the scanner's ValueErrors, and whatever odd input provokes
            raise FlatFileError(
                f"not a readable {kind} flat file ({error})",
                lines.line or 1,
                f"check the file is {kind} text as NCBI/ENA write it, or upload FASTA",
            ) from None
        count += 1
        yield _flat_file_record(record, lines, kind)
    if count == 0:
        first = "LOCUS" if file_format == "genbank" else "ID"
        raise FlatFileError(
            f"no {kind} record found (no line starts with '{first}')",
            1,
            f"upload a {kind} flat file, or give the file the extension of its real format",
        )


def _flat_file_record(record: object, lines: _CountedLines, kind: str) -> FlatFileRecord:
    from Bio.Seq import UndefinedSequenceError

    molecule_type = record.annotations.get("molecule_type")  # type: ignore[attr-defined]
    if molecule_type and "protein" in molecule_type.lower():
        raise FlatFileError(
            f"record {record.id!r} is a protein record (molecule type {molecule_type})",  # type: ignore[attr-defined]
            lines.record_line,
            f"upload nucleotide {kind} records (DNA), not protein (GenPept) ones",
        )
    if not lines.terminated:
        raise FlatFileError(
            f"record {record.id!r} ends without its '//' line: the file is cut short",  # type: ignore[attr-defined]
            lines.line,
            "upload the complete file again",
        )
    try:
        sequence = bytes(record.seq)  # type: ignore[attr-defined]
    except UndefinedSequenceError:
        sequence = b""
    if not sequence:
        raise FlatFileError(
            f"record {record.id!r} has no sequence (no ORIGIN/SQ block: a CONTIG or WGS master record?)",  # type: ignore[attr-defined]
            lines.record_line,
            f"download the {kind} record with its sequence (NCBI: rettype=gbwithparts), or upload FASTA",
        )
    declared = _DECLARED_LENGTH.search(lines.record_header)
    if declared and int(declared.group(1)) != len(sequence):
        first_word = lines.record_header.split()[0]
        raise FlatFileError(
            f"record {record.id!r}: its {first_word} line says {int(declared.group(1))} bases but its "  # type: ignore[attr-defined]
            f"sequence block holds {len(sequence)} letters",
            lines.record_line,
            f"the sequence block was edited or cut: download the {kind} record again",
        )
    return FlatFileRecord(
        record_id=record.id,  # type: ignore[attr-defined]
        sequence=sequence,
        line=lines.record_line,
        sequence_line=lines.sequence_line,
        organism=record.annotations.get("organism"),  # type: ignore[attr-defined]
        taxonomy_id=_taxonomy_id(record),
        molecule_type=molecule_type,
    )


def _taxonomy_id(record: object) -> str | None:
    for feature in record.features:  # type: ignore[attr-defined]
        if feature.type == "source":
            for reference in feature.qualifiers.get("db_xref", []):
                if reference.startswith("taxon:"):
                    return reference.removeprefix("taxon:")
    return None
