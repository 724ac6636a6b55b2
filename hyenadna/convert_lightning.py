"""Convert an original HyenaDNA Lightning checkpoint (`weights.ckpt`) into a model directory.

The `LongSafari/hyenadna-*-seqlen` (non `-hf`) repositories ship the training framework's
Lightning checkpoint: `state_dict` keys prefixed `model.` (`model.backbone.layers.0.mixer...`),
with `.mixer.layer.` / `.mlp.layer.` when trained with `checkpoint_mixer`, the shared Sin frequency
repeated at every Sin position (`implicit_filter.1.freq`, `.3.freq`, `.5.freq`) and the LM head
tied to the embedding. This writes `config.json` + `model.safetensors` in the LongSafari `-hf`
layout this package loads (`hyena.backbone...`, one `implicit_filter.1.freq`, `lm_head.weight`),
plus the tokenizer files.

    python -m hyenadna.convert_lightning path/to/weights.ckpt out_dir [--config path/to/config.json]

Shapes (d_model, n_layer, d_inner, max_seq_len, filter sizes) are read from the weights; the
optional original `config.json` supplies the rest (Sin frequency `layer.w`, dropouts).
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from .configuration_hyenadna import HyenaDNAConfig
from .modeling_hyenadna import HyenaDNAForCausalLM
from .tokenization_hyenadna import CharacterTokenizer

SIN_FREQ = re.compile(r"(.*\.implicit_filter\.)(\d+)\.freq$")


def lightning_to_hf_state_dict(lightning_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename `model.backbone.*` keys to `hyena.backbone.*`, fold repeated Sin frequencies into
    index 1, and add `lm_head.weight` (the tied embedding if the checkpoint has no head of its own)."""
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in lightning_state.items():
        if not key.startswith("model.backbone."):
            continue
        name = "hyena." + key.removeprefix("model.")
        name = name.replace(".mixer.layer.", ".mixer.").replace(".mlp.layer.", ".mlp.")
        match = SIN_FREQ.match(name)
        if match and match.group(2) != "1":
            first = lightning_state[key.replace(f"implicit_filter.{match.group(2)}.", "implicit_filter.1.")]
            if not torch.equal(first, tensor):
                raise ValueError(
                    f"{key}: Sin frequencies differ between filter positions; expected one shared Sin"
                )
            continue
        converted[name] = tensor
    if not converted:
        raise ValueError(
            "no 'model.backbone.*' keys in the checkpoint's state_dict: not a HyenaDNA Lightning checkpoint"
        )
    head = lightning_state.get("model.lm_head.weight")
    converted["lm_head.weight"] = (
        head if head is not None else converted["hyena.backbone.embeddings.word_embeddings.weight"]
    ).clone()
    return converted


def config_from_state_dict(
    state: dict[str, torch.Tensor], original_config: dict[str, Any] | None = None
) -> HyenaDNAConfig:
    """HyenaDNAConfig whose shapes match `state` (hf keys); non-shape fields from the original config."""
    original = original_config or {}
    layer_cfg = original.get("layer", {})
    layer0 = "hyena.backbone.layers.0."
    embedding = state["hyena.backbone.embeddings.word_embeddings.weight"]
    d_model = embedding.shape[1]
    n_layer = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("hyena.backbone.layers."))
    z = state[layer0 + "mixer.filter_fn.pos_emb.z"]
    mlp_indices = sorted(
        int(k.split(".")[-2])
        for k in state
        if k.startswith(layer0 + "mixer.filter_fn.implicit_filter.") and k.endswith(".weight")
    )
    return HyenaDNAConfig(
        vocab_size=original.get("vocab_size", 12),
        d_model=d_model,
        d_inner=state[layer0 + "mlp.fc1.weight"].shape[0],
        n_layer=n_layer,
        max_seq_len=z.shape[1],
        emb_dim=z.shape[2],
        filter_order=state[layer0 + "mixer.filter_fn.implicit_filter.0.weight"].shape[0],
        num_inner_mlps=len(mlp_indices) - 2,
        hyena_order=state[layer0 + "mixer.in_proj.weight"].shape[0] // d_model - 1,
        short_filter_order=state[layer0 + "mixer.short_filter.weight"].shape[-1],
        activation_freq=layer_cfg.get("w", 10),
        embed_dropout=original.get("embed_dropout", 0.1),
        layer_norm_epsilon=original.get("layer_norm_epsilon", 1e-5),
        pad_vocab_size_multiple=original.get("pad_vocab_size_multiple", 8),
        tie_word_embeddings=False,
    )


def load_lightning_state_dict(checkpoint: Path, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """The `state_dict` of a Lightning checkpoint (or a bare state dict saved with torch.save)."""
    try:
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{checkpoint}: holds Python objects besides tensors (Lightning hyper-parameters); "
            "if you trust the file, rerun with --allow-pickle"
        ) from error
    return loaded.get("state_dict", loaded)


def convert(
    checkpoint: Path, output_dir: Path, original_config: Path | None = None, allow_pickle: bool = False
) -> HyenaDNAForCausalLM:
    """Convert `checkpoint` into a `from_pretrained` directory at `output_dir`; returns the model."""
    state = lightning_to_hf_state_dict(load_lightning_state_dict(checkpoint, allow_pickle))
    original = json.loads(original_config.read_text()) if original_config else None
    config = config_from_state_dict(state, original)
    model = HyenaDNAForCausalLM(config)
    model.load_state_dict(state, strict=True)  # every key present, nothing left over
    model.save_pretrained(output_dir)
    CharacterTokenizer(model_max_length=config.max_seq_len).save_pretrained(output_dir)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, help="Lightning weights.ckpt")
    parser.add_argument(
        "output_dir", type=Path, help="directory to write (config.json, model.safetensors, ...)"
    )
    parser.add_argument("--config", type=Path, help="the checkpoint's original config.json (optional)")
    parser.add_argument(
        "--allow-pickle", action="store_true", help="unpickle non-tensor objects (trusted files only)"
    )
    args = parser.parse_args(argv)
    model = convert(args.checkpoint, args.output_dir, args.config, args.allow_pickle)
    print(f"wrote {args.output_dir} ({sum(p.numel() for p in model.parameters()):,} parameters)")


if __name__ == "__main__":
    main()
