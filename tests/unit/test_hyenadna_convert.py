"""Lightning `weights.ckpt` -> LongSafari `-hf` layout converter, tested on a checkpoint written
with the original training framework's parameter names (HazyResearch/hyena-dna), holding the
reference fixture's weights; the converted model must reproduce the reference outputs."""

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
N_LAYER = 2  # the fixture's (tiny_reference/config.json)

# The state_dict names of HazyResearch/hyena-dna's language model (src/models/sequence/
# long_conv_lm.py ConvLMHeadModel; the modules as in standalone_hyenadna.py), written out from
# that source, not from this package. Per block: HyenaOperator `mixer` (in_proj, short_filter,
# filter_fn = HyenaFilter, out_proj), `mlp` (fc1, fc2), norm1, norm2. HyenaFilter registers
# pos_emb.z as a parameter and pos_emb.t and modulation.deltas as buffers (lr 0: state_dict keeps
# them), and builds implicit_filter as Linear, Sin, Linear, Sin, Linear, Sin, Linear with one Sin
# module at positions 1, 3 and 5 (state_dict lists its `freq` under each). The lm_head is tied
# to the word embeddings.
REFERENCE_BLOCK = [
    "mixer.in_proj.weight",
    "mixer.in_proj.bias",
    "mixer.out_proj.weight",
    "mixer.out_proj.bias",
    "mixer.short_filter.weight",
    "mixer.short_filter.bias",
    "mixer.filter_fn.bias",
    "mixer.filter_fn.pos_emb.z",
    "mixer.filter_fn.pos_emb.t",
    "mixer.filter_fn.implicit_filter.0.weight",
    "mixer.filter_fn.implicit_filter.0.bias",
    "mixer.filter_fn.implicit_filter.1.freq",
    "mixer.filter_fn.implicit_filter.2.weight",
    "mixer.filter_fn.implicit_filter.2.bias",
    "mixer.filter_fn.implicit_filter.3.freq",
    "mixer.filter_fn.implicit_filter.4.weight",
    "mixer.filter_fn.implicit_filter.4.bias",
    "mixer.filter_fn.implicit_filter.5.freq",
    "mixer.filter_fn.implicit_filter.6.weight",
    "mixer.filter_fn.modulation.deltas",
    "norm1.weight",
    "norm1.bias",
    "norm2.weight",
    "norm2.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
]
REFERENCE_TOP = ["backbone.embeddings.word_embeddings.weight", "backbone.ln_f.weight", "backbone.ln_f.bias"]


def reference_lightning_names(checkpoint_mixer: bool) -> list[str]:
    """The Lightning checkpoint's keys: the task module holds the model as `model`; with
    checkpoint_mixer/checkpoint_mlp, long_conv_lm.py wraps block.mixer / block.mlp in a
    CheckpointedModule whose child is `layer`."""
    names = [f"model.{name}" for name in REFERENCE_TOP] + ["model.lm_head.weight"]
    for layer in range(N_LAYER):
        for name in REFERENCE_BLOCK:
            if checkpoint_mixer:
                name = name.replace("mixer.", "mixer.layer.", 1).replace("mlp.", "mlp.layer.", 1)
            names.append(f"model.backbone.layers.{layer}.{name}")
    return names


def fixture_tensor(weights: dict[str, torch.Tensor], lightning_name: str) -> torch.Tensor:
    """The fixture's tensor for a reference name. The fixture is in LongSafari's `-hf` layout: the
    same module paths under `hyena.`, the shared Sin frequency once (index 1), its own lm_head."""
    path = lightning_name.removeprefix("model.").replace(".layer.", ".")
    path = path.replace("implicit_filter.3.freq", "implicit_filter.1.freq")
    path = path.replace("implicit_filter.5.freq", "implicit_filter.1.freq")
    if path == "lm_head.weight":
        return weights["hyena.backbone.embeddings.word_embeddings.weight"]  # tied, as in the reference
    return weights[f"hyena.{path}"]


def lightning_state_from_fixture(checkpoint_mixer: bool = False) -> dict[str, torch.Tensor]:
    weights = load_file(FIXTURES / "tiny_reference" / "model.safetensors")
    return {name: fixture_tensor(weights, name) for name in reference_lightning_names(checkpoint_mixer)}


def test_the_reference_names_cover_every_fixture_tensor():
    weights = load_file(FIXTURES / "tiny_reference" / "model.safetensors")
    used = {id(fixture_tensor(weights, name)) for name in reference_lightning_names(checkpoint_mixer=False)}
    # every tensor but the fixture's own lm_head (the reference ties it to the embedding)
    assert {key for key, tensor in weights.items() if id(tensor) not in used} == {"lm_head.weight"}
    assert torch.equal(weights["lm_head.weight"], weights["hyena.backbone.embeddings.word_embeddings.weight"])


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
