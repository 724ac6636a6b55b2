"""model_fn loads a trained artifact and the LongSafari-layout parity checkpoint, offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import hyenadna
import inference
from dna_tasks import EndpointSettings, parse_request, run_task
from tests.support.tolerances import summed_log_likelihood_atol

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hyenadna"
REFERENCE_DIR = FIXTURES / "tiny_reference"
# Input and last hidden state of the reference implementation (HazyResearch standalone_hyenadna)
# on the weights in REFERENCE_DIR.
REFERENCE_IO = FIXTURES / "tiny_reference_io.safetensors"
BASES = {7: "A", 8: "C", 9: "G", 10: "T", 11: "N"}


def small_trained_artifact(directory: Path) -> hyenadna.HyenaDNAForCausalLM:
    """What the training job writes: save_pretrained of the model and the tokenizer."""
    torch.manual_seed(0)
    config = hyenadna.config_for_size("tiny", d_model=32, d_inner=64, max_seq_len=128, filter_order=16)
    model = hyenadna.HyenaDNAForCausalLM(config).eval()
    model.save_pretrained(directory)
    hyenadna.CharacterTokenizer(model_max_length=128).save_pretrained(directory)
    (directory / "metrics.json").write_text(json.dumps({"eval_perplexity": 4.0}))
    return model


def test_model_fn_loads_a_trained_artifact_and_serves_what_the_trained_model_computes(tmp_path):
    trained = small_trained_artifact(tmp_path)
    assert (tmp_path / "tokenizer_config.json").is_file()

    loaded = inference.model_fn(str(tmp_path))

    assert loaded.max_seq_len == 128
    assert loaded.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    sequence = "ACGTTGCAAGGCTTAACGGT"
    answer = inference.predict_fn(
        parse_request({"task": "score", "sequences": [sequence]}, loaded.settings), loaded
    )
    with torch.no_grad():
        ids = torch.from_numpy(hyenadna.encode_dna(sequence))[None]
        expected = -trained(ids, labels=ids).loss.item() * (len(sequence) - 1)
    # A float32 mean times n against a float64 sum of n float32 terms: the error grows with n.
    assert answer["results"][0]["log_likelihood"] == pytest.approx(
        expected, abs=summed_log_likelihood_atol(len(sequence) - 1)
    )


def test_model_fn_loads_the_parity_checkpoint_without_tokenizer_files():
    assert not (REFERENCE_DIR / "tokenizer_config.json").exists()
    loaded = inference.model_fn(str(REFERENCE_DIR))
    assert loaded.max_seq_len == 1026
    reference = load_file(REFERENCE_IO)
    sequence = "".join(BASES[i] for i in reference["input_ids"][0].tolist())

    request = {"task": "embed", "sequences": [sequence], "per_position": True}
    (result,) = run_task(parse_request(request, loaded.settings), loaded)["results"]

    # What the reference implementation computes with these weights, to the parity target (1e-4)
    hidden = reference["last_hidden_state"][0].numpy()
    assert np.abs(np.array(result["per_position"]) - hidden).max() <= 1e-4
    assert np.abs(np.array(result["embedding"]) - hidden.mean(axis=0)).max() <= 1e-4


def test_max_seq_len_setting_lowers_the_models_limit():
    loaded = inference.load_model(REFERENCE_DIR, torch.device("cpu"), EndpointSettings(max_seq_len=100))
    assert loaded.max_seq_len == 100


def test_tokenizer_with_another_vocabulary_is_refused_at_load(tmp_path):
    shutil.copytree(REFERENCE_DIR, tmp_path, dirs_exist_ok=True)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"characters": ["A", "C", "G", "U", "N"]}))
    with pytest.raises(
        ValueError, match=r"tokenizer_config.json: characters .* differ from the HyenaDNA vocabulary"
    ):
        inference.model_fn(str(tmp_path))


def test_directory_without_a_model_is_refused_with_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json; expected a HyenaDNA model directory"):
        inference.model_fn(str(tmp_path))
