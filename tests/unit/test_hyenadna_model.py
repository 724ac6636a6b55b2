"""HyenaDNA model: reference parity, checkpoint layout, causality, padding, HF save/load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

import hyenadna
from hyenadna import HyenaDNAConfig, HyenaDNAForCausalLM, HyenaDNAForSequenceClassification, HyenaDNAModel
from hyenadna.fft_conv import fft_causal_conv
from hyenadna.modeling_hyenadna import CausalDepthwiseConv1d, causal_depthwise_conv

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hyenadna"
REFERENCE_DIR = FIXTURES / "tiny_reference"
REFERENCE_IO = FIXTURES / "tiny_reference_io.safetensors"


def small_config(**overrides) -> HyenaDNAConfig:
    fields = {"d_model": 32, "n_layer": 2, "max_seq_len": 64, "filter_order": 16, "embed_dropout": 0.0}
    return HyenaDNAConfig(**{**fields, **overrides})


def random_ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(7, 12, (batch, length), generator=generator)


@pytest.fixture(scope="module")
def reference_io() -> dict[str, torch.Tensor]:
    return load_file(REFERENCE_IO)


@pytest.fixture(scope="module")
def reference_model() -> HyenaDNAForCausalLM:
    return AutoModelForCausalLM.from_pretrained(REFERENCE_DIR).eval()


def test_reference_checkpoint_reproduces_reference_hidden_states_and_logits(reference_model, reference_io):
    with torch.no_grad():
        out = reference_model(reference_io["input_ids"], output_hidden_states=True)
    assert isinstance(reference_model, HyenaDNAForCausalLM)
    assert (out.hidden_states[-1] - reference_io["last_hidden_state"]).abs().max() <= 1e-4
    assert (out.logits - reference_io["logits"]).abs().max() <= 1e-4


def test_base_model_loads_causal_lm_checkpoint_and_matches_reference(reference_io):
    model = AutoModel.from_pretrained(REFERENCE_DIR).eval()
    with torch.no_grad():
        hidden = model(reference_io["input_ids"]).last_hidden_state
    assert isinstance(model, HyenaDNAModel)
    assert (hidden - reference_io["last_hidden_state"]).abs().max() <= 1e-4


def test_longsafari_directory_with_remote_code_auto_map_loads_our_classes(tmp_path, reference_io):
    # Official `-seqlen-hf` directories point auto_map at their own modeling code; no remote code
    # is fetched or trusted here: the registered local classes serve model_type "hyenadna".
    shutil.copytree(REFERENCE_DIR, tmp_path, dirs_exist_ok=True)
    config = json.loads((tmp_path / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "configuration_hyena.HyenaConfig",
        "AutoModelForCausalLM": "modeling_hyena.HyenaDNAForCausalLM",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    tokenizer_config = {
        "auto_map": {"AutoTokenizer": ["tokenization_hyena.CharacterTokenizer", None]},
        "characters": ["A", "C", "G", "T", "N"],
        "model_max_length": 1026,
        "padding_side": "left",
        "tokenizer_class": "CharacterTokenizer",
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    model = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    with torch.no_grad():
        logits = model(reference_io["input_ids"][:, :100]).logits
    assert isinstance(tokenizer, hyenadna.CharacterTokenizer)
    assert tokenizer("ACGT")["input_ids"] == [7, 8, 9, 10, 1]
    assert (logits - reference_io["logits"][:, :100]).abs().max() <= 1e-4


def test_state_dict_keys_and_values_are_exactly_those_of_the_longsafari_file(reference_model):
    stored = load_file(REFERENCE_DIR / "model.safetensors")
    ours = reference_model.state_dict()
    assert set(ours) == set(stored)
    for key, tensor in stored.items():
        assert torch.equal(ours[key], tensor), key


def test_stored_sin_frequency_drives_every_sin_position_of_the_filter_mlp(reference_model, reference_io):
    ids = reference_io["input_ids"][:1, :200]
    with torch.no_grad():
        before = reference_model(ids).logits
        mlp = reference_model.hyena.backbone.layers[0].mixer.filter_fn.implicit_filter
        z, _ = reference_model.hyena.backbone.layers[0].mixer.filter_fn.pos_emb(200)
        # Recompute the MLP by hand with the one stored frequency at positions 1, 3 and 5.
        freq = mlp._modules["1"].freq
        h = torch.sin(freq * mlp._modules["0"](z))
        h = torch.sin(freq * mlp._modules["2"](h))
        h = torch.sin(freq * mlp._modules["4"](h))
        assert torch.allclose(mlp(z), mlp._modules["6"](h))
        mlp._modules["1"].freq.mul_(1.5)
        after = reference_model(ids).logits
        mlp._modules["1"].freq.div_(1.5)
    assert not torch.allclose(before, after)


def test_outputs_up_to_position_t_never_depend_on_later_tokens():
    torch.manual_seed(0)
    model = HyenaDNAForCausalLM(small_config()).eval()
    ids = random_ids(2, 64)
    with torch.no_grad():
        base = model(ids).logits
        for t in (0, 17, 40, 62):
            changed = ids.clone()
            changed[:, t + 1 :] = random_ids(2, 63 - t, seed=t + 1)
            changed[:, t + 1 :] = torch.where(changed[:, t + 1 :] == ids[:, t + 1 :], 11, changed[:, t + 1 :])
            logits = model(changed).logits
            assert torch.allclose(logits[:, : t + 1], base[:, : t + 1], atol=1e-5)
            assert not torch.allclose(logits[:, t + 1 :], base[:, t + 1 :], atol=1e-5)


def test_fft_convolution_equals_direct_causal_convolution():
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(2, 50, 3, generator=generator, dtype=torch.float64)  # [B, L, C]
    k = torch.randn(50, 3, generator=generator, dtype=torch.float64)  # [L, C]
    bias = torch.randn(3, generator=generator, dtype=torch.float64)
    direct = torch.zeros_like(u)
    for t in range(50):
        # y[t] = sum_{s<=t} k[t-s] u[s] + D u[t]
        direct[:, t] = (k[: t + 1].flip(0) * u[:, : t + 1]).sum(1) + bias * u[:, t]
    assert torch.allclose(fft_causal_conv(u.float(), k.float(), bias.float()).double(), direct, atol=1e-4)


@pytest.mark.slow  # over 5 s on a loaded 2-core machine (make test-fast skips it)
def test_fft_convolution_and_short_filter_gradients_match_finite_differences():
    generator = torch.Generator().manual_seed(7)
    u = torch.randn(2, 17, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    k = torch.randn(17, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fft_causal_conv, (u, k, bias))
    weight = torch.randn(3, 1, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(causal_depthwise_conv, (u, weight, bias))


def test_short_filter_equals_the_reference_causal_depthwise_conv1d():
    torch.manual_seed(6)
    short = CausalDepthwiseConv1d(channels=6, kernel_size=3)
    conv = torch.nn.Conv1d(6, 6, 3, padding=2, groups=6)
    conv.load_state_dict(short.state_dict())
    x = torch.randn(2, 20, 6)  # [B, L, C]
    expected = conv(x.transpose(1, 2))[..., :20].transpose(1, 2)
    assert torch.allclose(short(x), expected, atol=1e-6)
    assert torch.allclose(short(x[:, :1]), expected[:, :1], atol=1e-6)


@pytest.mark.parametrize("tie", [False, True])
def test_save_and_load_round_trip_gives_identical_outputs(tmp_path, tie):
    torch.manual_seed(1)
    model = HyenaDNAForCausalLM(small_config(tie_word_embeddings=tie)).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = random_ids(2, 40)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert (loaded.lm_head.weight is loaded.get_input_embeddings().weight) == tie


def test_sequence_longer_than_max_seq_len_is_rejected_with_a_clear_error():
    model = HyenaDNAModel(small_config(max_seq_len=32)).eval()
    with pytest.raises(ValueError, match="longer than this model's max_seq_len=32"):
        model(random_ids(1, 33))


def test_padded_batch_gives_the_unpadded_outputs_at_real_tokens():
    torch.manual_seed(2)
    model = HyenaDNAForCausalLM(small_config()).eval()
    short, long = random_ids(1, 30, seed=3), random_ids(1, 45, seed=4)
    pad = torch.full((1, 15), hyenadna.PAD_ID)
    left_padded = torch.cat([torch.cat([pad, short], 1), long])
    right_padded = torch.cat([torch.cat([short, pad], 1), long])
    mask_left = (torch.arange(45) >= 15).long()[None].repeat(2, 1)
    mask_left[1] = 1
    with torch.no_grad():
        alone = model(short).logits[0]
        long_alone = model(long).logits[0]
        left = model(left_padded, attention_mask=mask_left).logits
        right = model(right_padded, attention_mask=mask_left.flip(-1)).logits
        unmasked = model(left_padded).logits
    assert torch.allclose(left[0, 15:], alone, atol=1e-5)
    assert torch.allclose(left[1], long_alone, atol=1e-5)
    assert torch.allclose(right[0, :30], alone, atol=1e-5)
    # Without the mask the pad tokens leak into the real ones, as in the reference.
    assert not torch.allclose(unmasked[0, 15:], alone, atol=1e-3)


def test_causal_lm_loss_is_mean_next_token_cross_entropy_ignoring_minus_100():
    torch.manual_seed(3)
    model = HyenaDNAForCausalLM(small_config()).eval()
    ids = random_ids(2, 20)
    labels = ids.clone()
    labels[0, 5:9] = -100
    with torch.no_grad():
        out = model(ids, labels=labels)
    logits = out.logits[:, :-1].reshape(-1, out.logits.shape[-1])
    targets = labels[:, 1:].reshape(-1)
    kept = targets != -100
    expected = -torch.log_softmax(logits[kept], -1).gather(1, targets[kept, None]).mean()
    assert out.logits.shape == (2, 20, 16)
    assert torch.allclose(out.loss, expected, atol=1e-6)


def test_training_step_reaches_every_parameter_and_lowers_the_loss():
    torch.manual_seed(4)
    model = HyenaDNAForCausalLM(small_config())
    ids = random_ids(4, 64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(5):
        loss = model(ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        if not losses:
            missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
            assert missing == []
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_activation_checkpointing_gives_the_same_loss_and_gradients():
    torch.manual_seed(8)
    plain = HyenaDNAForCausalLM(small_config())
    checkpointed = HyenaDNAForCausalLM(small_config())
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.activation_checkpointing_enable()
    ids = random_ids(2, 32)
    losses = []
    for model in (plain, checkpointed):
        model.train()
        loss = model(ids, labels=ids).loss
        loss.backward()
        losses.append(loss)
    assert checkpointed.hyena.backbone.layers[0].gradient_checkpointing
    assert torch.equal(losses[0], losses[1])
    for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name


def test_auto_classes_load_a_saved_directory_without_remote_code(tmp_path):
    config = small_config(num_labels=3)
    HyenaDNAForSequenceClassification(config).save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "hyenadna"
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(classifier, HyenaDNAForSequenceClassification)
    ids = random_ids(2, 20)
    with torch.no_grad():
        out = classifier(ids, labels=torch.tensor([0, 2]))
        hidden = classifier.hyena(ids).last_hidden_state
    assert out.logits.shape == (2, 3)
    assert torch.allclose(out.logits, classifier.score(hidden[:, -1]), atol=1e-6)
    assert out.loss is not None


def test_sequence_classifier_reads_the_last_real_token_of_padded_rows():
    torch.manual_seed(5)
    classifier = HyenaDNAForSequenceClassification(small_config(num_labels=2)).eval()
    seq = random_ids(1, 20)
    right_padded = torch.cat([seq, torch.full((1, 6), hyenadna.PAD_ID)], 1)
    left_padded = torch.cat([torch.full((1, 6), hyenadna.PAD_ID), seq], 1)
    mask = (right_padded != hyenadna.PAD_ID).long()
    with torch.no_grad():
        alone = classifier(seq).logits
        right = classifier(right_padded, attention_mask=mask).logits
        left = classifier(left_padded, attention_mask=mask.flip(-1)).logits
    assert torch.allclose(right, alone, atol=1e-5)
    assert torch.allclose(left, alone, atol=1e-5)


def test_config_for_size_gives_the_longsafari_family_sizes():
    tiny, small, medium = (hyenadna.config_for_size(n) for n in ("tiny", "small", "medium"))
    assert (tiny.d_model, tiny.n_layer, tiny.max_seq_len) == (128, 2, 1026)
    assert (small.d_model, small.n_layer, small.max_seq_len) == (256, 4, 32770)
    assert (medium.d_model, medium.n_layer, medium.max_seq_len) == (256, 8, 160002)
    large = hyenadna.config_for_size("large")
    assert (large.d_model, large.n_layer, large.d_inner, large.max_seq_len) == (256, 8, 1024, 1000002)
    assert hyenadna.config_for_size("small", max_seq_len=8194).max_seq_len == 8194
    with pytest.raises(ValueError, match="unknown HyenaDNA size 'huge'"):
        hyenadna.config_for_size("huge")


def test_reference_config_fields_survive_a_config_round_trip(tmp_path):
    config = AutoConfig.from_pretrained(REFERENCE_DIR)
    config.save_pretrained(tmp_path)
    saved = AutoConfig.from_pretrained(tmp_path).to_dict()
    for field in (
        "d_model",
        "d_inner",
        "n_layer",
        "max_seq_len",
        "emb_dim",
        "filter_order",
        "activation_freq",
    ):
        assert saved[field] == config.to_dict()[field]
    assert saved["model_type"] == "hyenadna"


def groups_train_py_built(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """The rule training_job/train.py hard-coded before the model owned its optimizer groups."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 and "filter_fn" not in name else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def same_groups(groups: list[dict], expected: list[dict]) -> bool:
    def identities(gs: list[dict]) -> list[tuple[float, list[int]]]:
        return [(g["weight_decay"], [id(p) for p in g["params"]]) for g in gs]

    return identities(groups) == identities(expected)


@pytest.mark.parametrize(
    "build",
    [
        lambda: HyenaDNAForCausalLM(hyenadna.config_for_size("tiny", max_seq_len=64)),  # tied head
        lambda: AutoModelForCausalLM.from_pretrained(REFERENCE_DIR),  # LongSafari: untied head
        lambda: HyenaDNAForCausalLM(small_config(hyena_order=3, num_inner_mlps=1)),
        lambda: HyenaDNAForCausalLM(small_config(train_freq=False)),  # Sin frequency is a buffer
        lambda: HyenaDNAForSequenceClassification(small_config(num_labels=2)),
        lambda: HyenaDNAModel(small_config()),
    ],
    ids=["tiny-tied", "reference-untied", "order-3", "fixed-freq", "classifier", "backbone"],
)
def test_optimizer_groups_are_those_train_py_built(build):
    model = build()
    assert same_groups(model.optimizer_param_groups(0.1), groups_train_py_built(model, 0.1))
    model.get_input_embeddings().weight.requires_grad_(False)  # frozen parameters are left out
    assert same_groups(model.optimizer_param_groups(0.1), groups_train_py_built(model, 0.1))


def test_implicit_filters_biases_and_norms_take_no_weight_decay():
    model = HyenaDNAForCausalLM(small_config())
    decay, no_decay = model.optimizer_param_groups(0.1)
    names = {id(p): name for name, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(".filter_fn." not in names[id(p)] and p.dim() >= 2 for p in decay["params"])
    assert {names[id(p)] for p in no_decay["params"] if p.dim() >= 2} == {
        name for name, p in model.named_parameters() if ".filter_fn." in name and p.dim() >= 2
    }


def test_configure_optimizers_gives_adamw_over_the_model_groups():
    model = HyenaDNAForCausalLM(small_config())
    optimizer = model.configure_optimizers(0.1, 3e-3, (0.9, 0.95), device_type="cpu")
    assert isinstance(optimizer, torch.optim.AdamW)
    assert same_groups(optimizer.param_groups, model.optimizer_param_groups(0.1))
    assert all(
        g["lr"] == 3e-3 and g["betas"] == (0.9, 0.95) and not g["fused"] for g in optimizer.param_groups
    )


@pytest.mark.parametrize("head", [HyenaDNAForCausalLM, HyenaDNAForSequenceClassification])
def test_heads_reach_the_backbones_embedding_and_resize_keeps_the_lm_head_tied(head):
    # The heads define no embedding accessors of their own: PreTrainedModel delegates to `hyena`.
    model = head(small_config())
    embedding = model.hyena.backbone.embeddings.word_embeddings
    assert model.get_input_embeddings() is embedding
    replacement = torch.nn.Embedding(embedding.num_embeddings, embedding.embedding_dim)
    model.set_input_embeddings(replacement)
    assert model.hyena.backbone.embeddings.word_embeddings is replacement
    if head is HyenaDNAForCausalLM:
        model = head(small_config(tie_word_embeddings=True))
        model.resize_token_embeddings(embedding.num_embeddings + 8, mean_resizing=False)
        assert model.lm_head.weight is model.get_input_embeddings().weight
        assert model.lm_head.weight.shape[0] == embedding.num_embeddings + 8
