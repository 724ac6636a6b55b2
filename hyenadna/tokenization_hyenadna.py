"""Character tokenizer for HyenaDNA: one token per nucleotide.

Vocabulary and character mapping are `hyenadna.alphabet`'s (the one definition), shared by the
fast path `encode_dna` and the HF `CharacterTokenizer`:

    A C G T N       -> 7 8 9 10 11, in either case (soft-masked lowercase repeats are ordinary bases)
    R Y S W K M B D H V (IUPAC ambiguity codes, either case) -> N (11)
    anything else   -> [UNK] (6)

The reference maps only upper-case A C G T N and sends everything else to [UNK]; for upper-case
DNA the two agree. `first_invalid_dna_position` finds the first character outside IUPAC DNA
(A C G T N and the ambiguity codes, either case) so callers can reject input with a clear
message instead of silently feeding [UNK]s.

`encode_dna` is a numpy 256-entry lookup table over the bytes (no per-character Python), for the
training data pipeline and the endpoint; the HF tokenizer is for `AutoTokenizer` users and
reproduces the reference's framing: [SEP] appended, padding on the left, `model_max_length`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from transformers import AddedToken, PreTrainedTokenizer

from . import alphabet
from .alphabet import NUCLEOTIDES, SPECIAL_TOKEN_IDS, UNK_ID


def _read_only(table: np.ndarray) -> np.ndarray:
    table.flags.writeable = False
    return table


# The alphabet's byte tables as numpy lookup tables: byte value -> token id (int64), and byte
# value -> "is an IUPAC DNA character" (whitespace is not: a sequence string has none).
BYTE_TO_TOKEN_ID = _read_only(np.frombuffer(alphabet.BYTE_TO_TOKEN_ID, dtype=np.uint8).astype(np.int64))
IS_IUPAC_DNA_BYTE = _read_only(np.frombuffer(alphabet.NORMALIZE_TABLE, dtype=np.uint8) != alphabet.INVALID)


def _as_bytes(seq: bytes | bytearray | memoryview | str) -> np.ndarray:
    if isinstance(seq, str):
        # Non-ASCII characters become '?' (one byte each, so positions are kept) -> [UNK] / invalid.
        seq = seq.encode("ascii", errors="replace")
    return np.frombuffer(seq, dtype=np.uint8)


def encode_dna(seq: bytes | str) -> np.ndarray:
    """Token ids (int64, no special tokens) of a DNA sequence, via the 256-entry lookup table."""
    return BYTE_TO_TOKEN_ID[_as_bytes(seq)]


def first_invalid_dna_position(seq: bytes | str) -> int | None:
    """0-based position of the first character that is not IUPAC DNA, or None if all are valid.

    Example: `first_invalid_dna_position("ACGU")` -> 3.
    """
    invalid = np.flatnonzero(~IS_IUPAC_DNA_BYTE[_as_bytes(seq)])
    return int(invalid[0]) if invalid.size else None


class CharacterTokenizer(PreTrainedTokenizer):
    """Hugging Face tokenizer with the reference HyenaDNA vocabulary and framing.

    `tokenizer("ACGT")` -> input_ids [7, 8, 9, 10, 1] ([SEP] appended, as LongSafari's tokenizer);
    batches pad on the left with [PAD]=4 by default and return an `attention_mask` the models use
    to ignore the padding. Characters map as `encode_dna` does (see the module docstring).
    """

    vocab_files_names: dict[str, str] = {}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        characters: Sequence[str] = tuple(NUCLEOTIDES),
        model_max_length: int = 1024,
        padding_side: str = "left",
        **kwargs: Any,
    ) -> None:
        self.characters = list(characters)
        # Characters take the ids after the special tokens (A=7 .. N=11 for the default ones).
        first_id = len(SPECIAL_TOKEN_IDS)
        self._vocab_str_to_int = {
            **SPECIAL_TOKEN_IDS,
            **{ch: first_id + i for i, ch in enumerate(self.characters)},
        }
        self._vocab_int_to_str = {v: k for k, v in self._vocab_str_to_int.items()}
        for name, token in (
            ("bos_token", "[BOS]"),
            ("eos_token", "[SEP]"),
            ("sep_token", "[SEP]"),
            ("cls_token", "[CLS]"),
            ("pad_token", "[PAD]"),
            ("unk_token", "[UNK]"),
        ):
            kwargs.setdefault(name, AddedToken(token, lstrip=False, rstrip=False))
        kwargs.setdefault("mask_token", AddedToken("[MASK]", lstrip=True, rstrip=False))
        kwargs.pop("add_prefix_space", None)
        super().__init__(
            characters=self.characters,
            model_max_length=model_max_length,
            padding_side=padding_side,
            add_prefix_space=False,
            **kwargs,
        )

    @property
    def vocab_size(self) -> int:
        return len(self._vocab_str_to_int)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab_str_to_int)

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        return list(text)

    def _convert_token_to_id(self, token: str) -> int:
        if token in self._vocab_str_to_int:
            return self._vocab_str_to_int[token]
        if len(token) == 1:
            return int(encode_dna(token)[0])
        return UNK_ID

    def _convert_id_to_token(self, index: int) -> str:
        return self._vocab_int_to_str.get(index, "[UNK]")

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        result = token_ids_0 + [self.sep_token_id]
        if token_ids_1 is not None:
            result += token_ids_1 + [self.sep_token_id]
        return result

    def get_special_tokens_mask(
        self,
        token_ids_0: list[int],
        token_ids_1: list[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        if already_has_special_tokens:
            return [1 if t in SPECIAL_TOKEN_IDS.values() else 0 for t in token_ids_0 + (token_ids_1 or [])]
        mask = [0] * len(token_ids_0) + [1]
        if token_ids_1 is not None:
            mask += [0] * len(token_ids_1) + [1]
        return mask

    def create_token_type_ids_from_sequences(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        # The vocabulary is fully described by `characters` in tokenizer_config.json.
        return ()
