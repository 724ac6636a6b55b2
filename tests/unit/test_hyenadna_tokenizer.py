"""HyenaDNA tokenizer: the byte lookup table, invalid-character reporting, HF tokenizer framing."""

from __future__ import annotations

import numpy as np
from transformers import AutoTokenizer

import hyenadna
from hyenadna import CharacterTokenizer, encode_dna, first_invalid_dna_position

REFERENCE_IDS = {"[CLS]": 0, "[SEP]": 1, "[BOS]": 2, "[MASK]": 3, "[PAD]": 4, "[RESERVED]": 5, "[UNK]": 6}


def test_every_byte_maps_as_documented():
    expected = {ord(c): i for c, i in zip("ACGTN", range(7, 12), strict=True)}
    expected.update({ord(c): i for c, i in zip("acgtn", range(7, 12), strict=True)})
    expected.update({ord(c): 11 for c in "RYSWKMBDHVryswkmbdhv"})
    ids = encode_dna(bytes(range(256)))
    assert ids.dtype == np.int64
    assert ids.tolist() == [expected.get(b, 6) for b in range(256)]


def test_str_and_bytes_encode_alike_and_non_ascii_is_unknown():
    assert encode_dna("ACgtNRx-").tolist() == [7, 8, 9, 10, 11, 11, 6, 6]
    assert encode_dna(b"ACgtNRx-").tolist() == encode_dna("ACgtNRx-").tolist()
    assert encode_dna("AéC").tolist() == [7, 6, 8]


def test_first_invalid_position_names_the_first_non_iupac_character():
    assert first_invalid_dna_position("ACGTNRYKMSWBDHVacgtn") is None
    assert first_invalid_dna_position("ACGU") == 3
    assert first_invalid_dna_position(b"AC GT") == 2
    assert first_invalid_dna_position("ACé") == 2
    assert first_invalid_dna_position("") is None


def test_tokenizer_has_the_reference_vocabulary_and_appends_sep():
    tokenizer = CharacterTokenizer(model_max_length=100)
    vocab = tokenizer.get_vocab()
    assert {k: vocab[k] for k in REFERENCE_IDS} == REFERENCE_IDS
    assert [vocab[c] for c in "ACGTN"] == [7, 8, 9, 10, 11]
    assert tokenizer("ACGTN")["input_ids"] == [7, 8, 9, 10, 11, hyenadna.SEP_ID]
    assert tokenizer("ACGTN", add_special_tokens=False)["input_ids"] == encode_dna("ACGTN").tolist()
    assert tokenizer.decode(tokenizer("GATTACA")["input_ids"], skip_special_tokens=True) == "GATTACA"


def test_tokenizer_pads_on_the_left_and_truncates_to_model_max_length():
    tokenizer = CharacterTokenizer(model_max_length=6)
    batch = tokenizer(["ACGT", "AC"], padding=True)
    assert batch["input_ids"] == [[7, 8, 9, 10, 1], [4, 4, 7, 8, 1]]
    assert batch["attention_mask"] == [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]
    assert len(tokenizer("ACGTACGTACGT", truncation=True)["input_ids"]) == 6


def test_auto_tokenizer_loads_a_saved_tokenizer_without_remote_code(tmp_path):
    CharacterTokenizer(model_max_length=1026).save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, CharacterTokenizer)
    assert loaded.model_max_length == 1026
    assert loaded.padding_side == "left"
    assert loaded(["acgt", "A"], padding=True)["input_ids"] == [[7, 8, 9, 10, 1], [4, 4, 4, 7, 1]]
