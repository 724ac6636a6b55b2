"""The DNA alphabet of HyenaDNA: the one definition of bases, ambiguity codes and token ids.

Standard library only, on purpose: the Lambda package (boto3 + Powertools, no numpy or torch)
gets this very file at build time through the symlink `functions/pipeline/dna_alphabet.py`
(`sam build` copies a symlinked file's content), so ingest, the training data pipeline and the
tokenizer cannot drift apart.

Vocabulary (the reference CharacterTokenizer's ids):

    [CLS]=0 [SEP]=1 [BOS]=2 [MASK]=3 [PAD]=4 [RESERVED]=5 [UNK]=6  A=7 C=8 G=9 T=10 N=11

Characters:

    A C G T N                                  -> themselves, in either case (soft-masked
                                                  lowercase repeats are ordinary bases)
    R Y S W K M B D H V (IUPAC ambiguity codes) -> N, in either case
    whitespace inside sequence lines           -> dropped
    anything else                              -> invalid (the reader says where)
"""

from __future__ import annotations

SPECIAL_TOKEN_IDS: dict[str, int] = {
    "[CLS]": 0,
    "[SEP]": 1,
    "[BOS]": 2,
    "[MASK]": 3,
    "[PAD]": 4,
    "[RESERVED]": 5,
    "[UNK]": 6,
}
NUCLEOTIDES = "ACGTN"
NUCLEOTIDE_IDS: dict[str, int] = {base: 7 + i for i, base in enumerate(NUCLEOTIDES)}
PAD_ID = SPECIAL_TOKEN_IDS["[PAD]"]
SEP_ID = SPECIAL_TOKEN_IDS["[SEP]"]
UNK_ID = SPECIAL_TOKEN_IDS["[UNK]"]
N_ID = NUCLEOTIDE_IDS["N"]

CANONICAL_BASES = NUCLEOTIDES.encode()
IUPAC_AMBIGUITY_CODES = b"RYSWKMBDHV"  # written as N: the model's vocabulary is ACGTN
WHITESPACE = b" \t\r\n\v\f"
INVALID = 0  # the byte NORMALIZE_TABLE gives every character that is not IUPAC DNA
INVALID_BYTE = bytes([INVALID])


def _normalize_table() -> bytes:
    table = bytearray([INVALID]) * 256
    for base in CANONICAL_BASES:
        table[base] = table[base + 32] = base
    for code in IUPAC_AMBIGUITY_CODES:
        table[code] = table[code + 32] = ord("N")
    return bytes(table)


# bytes.translate(NORMALIZE_TABLE, WHITESPACE): uppercase ACGTN, IUPAC codes -> N, else INVALID.
NORMALIZE_TABLE = _normalize_table()
# byte -> token id (A=7 .. N=11, anything else [UNK]=6), for numpy.frombuffer lookup tables.
BYTE_TO_TOKEN_ID = bytes(NUCLEOTIDE_IDS[chr(byte)] if byte != INVALID else UNK_ID for byte in NORMALIZE_TABLE)


def normalize_bases(raw: bytes) -> bytes:
    """Sequence bytes (any case, line breaks allowed) -> uppercase ACGTN; non-nucleotides become 0x00.

    C speed (`bytes.translate`); callers test `INVALID_BYTE in result` and locate the offending
    input only then.
    """
    return raw.translate(NORMALIZE_TABLE, WHITESPACE)


def first_invalid_position(raw: bytes) -> int | None:
    """0-based index of the first byte that is neither IUPAC DNA nor whitespace, or None."""
    for index, byte in enumerate(raw):
        if NORMALIZE_TABLE[byte] == INVALID and byte not in WHITESPACE:
            return index
    return None
