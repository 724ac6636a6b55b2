"""Lightning `weights.ckpt` -> LongSafari `-hf` layout converter, tested on a synthetic checkpoint
built from the reference fixture weights in the original training framework's key layout."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from hyenadna.convert_lightning import convert

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hyenadna"


def lightning_state_from_fixture(checkpoint_mixer: bool = False) -> dict[str, torch.Tensor]:
    """The fixture weights as the Lightning module saved them: `model.` prefix, the shared Sin
    frequency under every Sin index, head tied to the embedding, plus non-model entries."""
    state = {}
    for key, tensor in load_file(FIXTURES / "tiny_reference" / "model.safetensors").items():
        if key == "lm_head.weight":
            continue
        name = "model." + key.removeprefix("hyena.")
        if checkpoint_mixer:
            name = name.replace(".mixer.", ".mixer.layer.").replace(".mlp.", ".mlp.layer.")
        state[name] = tensor
        if key.endswith("implicit_filter.1.freq"):
            for index in (3, 5):
                state[name.replace("implicit_filter.1.", f"implicit_filter.{index}.")] = tensor
    state["model.lm_head.weight"] = state["model.backbone.embeddings.word_embeddings.weight"]
    return state


@pytest.mark.parametrize("checkpoint_mixer", [False, True])
def test_converted_lightning_checkpoint_reproduces_the_reference_outputs(tmp_path, checkpoint_mixer):
    ckpt = tmp_path / "weights.ckpt"
    torch.save({"state_dict": lightning_state_from_fixture(checkpoint_mixer), "epoch": 3}, ckpt)
    convert(ckpt, tmp_path / "converted")

    io = load_file(FIXTURES / "tiny_reference_io.safetensors")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "converted").eval()
    with torch.no_grad():
        out = model(io["input_ids"], output_hidden_states=True)
    assert (out.hidden_states[-1] - io["last_hidden_state"]).abs().max() <= 1e-4
    assert (out.logits - io["logits"]).abs().max() <= 1e-4
    written = load_file(tmp_path / "converted" / "model.safetensors")
    assert set(written) == set(load_file(FIXTURES / "tiny_reference" / "model.safetensors"))
    assert (tmp_path / "converted" / "tokenizer_config.json").exists()


def test_converter_runs_as_a_module_and_reads_the_original_config(tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / "weights.ckpt"
    torch.save({"state_dict": lightning_state_from_fixture()}, ckpt)
    original_config = tmp_path / "config.json"
    original_config.write_text('{"d_model": 128, "n_layer": 2, "layer": {"_name_": "hyena", "w": 10}}')
    argv = [str(ckpt), str(tmp_path / "out"), "--config", str(original_config)]
    monkeypatch.setattr(sys, "argv", ["convert_lightning", *argv])
    monkeypatch.delitem(sys.modules, "hyenadna.convert_lightning")  # run it fresh, as `python -m` does
    runpy.run_module("hyenadna.convert_lightning", run_name="__main__")
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_checkpoint_without_hyenadna_keys_is_rejected(tmp_path):
    ckpt = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {"model.encoder.weight": torch.zeros(2)}}, ckpt)
    with pytest.raises(ValueError, match="not a HyenaDNA Lightning checkpoint"):
        convert(ckpt, tmp_path / "out")
