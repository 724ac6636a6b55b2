"""The DNA alphabet (hyenadna/alphabet.py): what it says, and that it is the only one.

The tokenizer, the training data pipeline and the endpoint all take bases, ambiguity codes and
token ids from this one module; the literals below are the reference vocabulary, written out
here (and only here, outside alphabet.py) to pin it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

import dna_tasks
import hyenadna
import sequence_data
from hyenadna import alphabet
from hyenadna.tokenization_hyenadna import BYTE_TO_TOKEN_ID, IS_IUPAC_DNA_BYTE

REPO = Path(__file__).resolve().parents[2]
REFERENCE_IDS = {"[CLS]": 0, "[SEP]": 1, "[BOS]": 2, "[MASK]": 3, "[PAD]": 4, "[RESERVED]": 5, "[UNK]": 6}
BASE_IDS = {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
AMBIGUITY_CODES = "RYSWKMBDHV"


def test_alphabet_is_the_reference_vocabulary():
    assert alphabet.SPECIAL_TOKEN_IDS == REFERENCE_IDS
    assert alphabet.NUCLEOTIDE_IDS == BASE_IDS
    assert (alphabet.PAD_ID, alphabet.SEP_ID, alphabet.UNK_ID, alphabet.N_ID) == (4, 1, 6, 11)


def test_normalize_uppercases_bases_writes_ambiguity_codes_as_n_and_drops_whitespace():
    assert alphabet.normalize_bases(b"acgtn ACGTN\r\n") == b"ACGTNACGTN"
    assert alphabet.normalize_bases((AMBIGUITY_CODES + AMBIGUITY_CODES.lower()).encode()) == b"N" * 20
    for byte in range(256):
        char = chr(byte)
        normalized = alphabet.normalize_bases(bytes([byte]))
        if char.upper() in BASE_IDS:
            assert normalized == char.upper().encode()
        elif char.upper() in AMBIGUITY_CODES:
            assert normalized == b"N"
        elif char in " \t\r\n\v\f":
            assert normalized == b""
        else:
            assert normalized == alphabet.INVALID_BYTE, repr(char)


def test_first_invalid_position_skips_whitespace_and_finds_the_first_non_dna_byte():
    assert alphabet.first_invalid_position(b"ACGT nryk\r\n") is None
    assert alphabet.first_invalid_position(b"AC GU") == 4
    assert alphabet.first_invalid_position(b"") is None


def test_tokenizer_tables_and_vocabulary_are_the_alphabet():
    assert BYTE_TO_TOKEN_ID.tolist() == list(alphabet.BYTE_TO_TOKEN_ID)
    assert IS_IUPAC_DNA_BYTE.tolist() == [byte != alphabet.INVALID for byte in alphabet.NORMALIZE_TABLE]
    vocab = hyenadna.CharacterTokenizer().get_vocab()
    assert vocab == {**alphabet.SPECIAL_TOKEN_IDS, **alphabet.NUCLEOTIDE_IDS}
    assert (hyenadna.PAD_ID, hyenadna.NUCLEOTIDE_IDS) == (alphabet.PAD_ID, alphabet.NUCLEOTIDE_IDS)


def test_training_data_and_endpoint_use_the_alphabet():
    dna = b"ACGTNacgtn" + AMBIGUITY_CODES.encode() + AMBIGUITY_CODES.lower().encode() + b" \t\r\n"
    assert sequence_data.normalized_line(dna, "x.fa", 1) == alphabet.normalize_bases(dna)
    assert sequence_data.PAD_ID == alphabet.PAD_ID
    assert dna_tasks.NUCLEOTIDE_IDS == alphabet.NUCLEOTIDE_IDS
    tokens = sequence_data.tokenize(alphabet.normalize_bases(dna))
    assert tokens.dtype == np.uint8
    assert bytes(tokens) == alphabet.normalize_bases(dna).translate(alphabet.BYTE_TO_TOKEN_ID)


def test_no_second_definition_of_the_ambiguity_codes_or_token_ids_in_model_training_or_endpoint_code():
    # functions/ (the Lambdas) gets alphabet.py itself through a symlink, skipped below.
    copies = []
    for root in ("hyenadna", "training_job", "endpoint", "bench", "functions"):
        for path in sorted((REPO / root).rglob("*.py")):
            if path.resolve() == (REPO / "hyenadna" / "alphabet.py").resolve():
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                value = node.value if isinstance(node, ast.Constant) else None
                text = value.decode("latin-1") if isinstance(value, bytes) else value
                if isinstance(text, str) and text.isalpha() and set(AMBIGUITY_CODES) <= set(text.upper()):
                    copies.append(f"{path.relative_to(REPO)}:{node.lineno}: {text!r}")
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                    for target in node.targets:
                        if isinstance(target, ast.Name) and target.id in (
                            "PAD_ID",
                            "SEP_ID",
                            "UNK_ID",
                            "N_ID",
                        ):
                            copies.append(f"{path.relative_to(REPO)}:{node.lineno}: {target.id} = ...")
    assert not copies, "define these in hyenadna/alphabet.py only:\n" + "\n".join(copies)
