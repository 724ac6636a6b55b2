"""The model's inference paths compute what its autograd forward computes.

Three faster ways to run the same function (hyenadna/modeling_hyenadna.py): the eval forward with
cached filters, incremental generation from a HyenaGenerationCache, and the chunked forward for
megabase sequences. Each is checked against the autograd path (eval mode with gradients on, which
never touches the caches) or against a full recomputation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

import hyenadna
from hyenadna import HyenaDNAConfig, HyenaDNAForCausalLM, HyenaGenerationCache
from hyenadna import modeling_hyenadna as modeling
from hyenadna.fft_conv import fast_fft_size
from hyenadna.modeling_hyenadna import HyenaFilter

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "hyenadna" / "tiny_reference"


def small_config(**overrides) -> HyenaDNAConfig:
    fields = {"d_model": 32, "n_layer": 2, "max_seq_len": 256, "filter_order": 16, "embed_dropout": 0.0}
    return HyenaDNAConfig(**{**fields, **overrides})


def random_ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(7, 12, (batch, length), generator=generator)


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest elementwise difference relative to the largest magnitude of b."""
    return float((a - b).abs().max() / b.abs().max())


def autograd_logits(model, ids, **kwargs) -> torch.Tensor:
    """The reference computation: eval mode, but with autograd on, which bypasses every cache."""
    with torch.enable_grad():
        return model(ids, **kwargs).logits.detach()


def cached_logits(model, ids, **kwargs) -> torch.Tensor:
    with torch.inference_mode():
        return model(ids, **kwargs).logits


def filters_of(model) -> list[HyenaFilter]:
    return [m for m in model.modules() if isinstance(m, HyenaFilter)]


@pytest.fixture(scope="module")
def reference_model() -> HyenaDNAForCausalLM:
    return AutoModelForCausalLM.from_pretrained(REFERENCE_DIR).eval()


# --- cached filters ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 63, 64, 65, 1000, 1026])
def test_eval_forward_with_cached_filters_equals_the_autograd_forward(reference_model, length):
    ids = random_ids(2, length, seed=length)
    expected = autograd_logits(reference_model, ids)
    first = cached_logits(reference_model, ids)  # fills the cache
    second = cached_logits(reference_model, ids)  # reads it
    assert relative_difference(first, expected) <= 1e-5
    assert torch.equal(second, first)


def test_eval_forward_with_a_padding_mask_equals_the_autograd_forward(reference_model):
    ids = random_ids(2, 96, seed=3)
    mask = torch.ones_like(ids)
    mask[0, 70:] = 0
    expected = autograd_logits(reference_model, ids, attention_mask=mask)
    assert relative_difference(cached_logits(reference_model, ids, attention_mask=mask), expected) <= 1e-5


def test_filters_are_computed_once_per_length_in_inference(monkeypatch):
    model = HyenaDNAForCausalLM(small_config()).eval()
    computed = []
    original = HyenaFilter.forward
    monkeypatch.setattr(HyenaFilter, "forward", lambda self, n: computed.append(n) or original(self, n))
    for _ in range(3):
        cached_logits(model, random_ids(1, 100))
    assert computed == [100, 100]  # once per layer, on the first call
    cached_logits(model, random_ids(1, 64))
    assert computed == [100, 100, 64, 64]
    autograd_logits(model, random_ids(1, 100))
    assert computed == [100, 100, 64, 64, 100, 100]  # the autograd path always recomputes


WEIGHT_EDITS = {
    "sin frequency": lambda f: f.implicit_filter._modules["1"].freq.mul_(1.5),
    "positional embedding": lambda f: f.pos_emb.z.add_(0.1),
    "first filter layer": lambda f: f.implicit_filter._modules["0"].weight.mul_(-1),
    "output filter layer": lambda f: f.implicit_filter.output_layer.weight.mul_(2),
    "decay buffer": lambda f: f.modulation.deltas.mul_(3),
    "time buffer": lambda f: f.pos_emb.t.mul_(0.5),
    "bias D": lambda f: f.bias.add_(1),
}


@pytest.mark.parametrize("edit", WEIGHT_EDITS.values(), ids=WEIGHT_EDITS.keys())
def test_an_in_place_weight_change_is_never_served_from_a_stale_cache(edit):
    torch.manual_seed(0)
    model = HyenaDNAForCausalLM(small_config()).eval()
    ids = random_ids(2, 80)
    before = cached_logits(model, ids)
    with torch.no_grad():
        edit(filters_of(model)[1])
    after = cached_logits(model, ids)
    assert not torch.allclose(after, before, atol=1e-4)
    assert relative_difference(after, autograd_logits(model, ids)) <= 1e-5


def test_an_optimizer_step_and_load_state_dict_invalidate_the_cache():
    torch.manual_seed(1)
    model = HyenaDNAForCausalLM(small_config()).eval()
    ids = random_ids(2, 50)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    before = cached_logits(model, ids)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(ids, labels=ids).loss.backward()
    optimizer.step()
    stepped = cached_logits(model, ids)
    assert not torch.allclose(stepped, before, atol=1e-4)
    assert relative_difference(stepped, autograd_logits(model, ids)) <= 1e-5

    model.load_state_dict(original)
    assert relative_difference(cached_logits(model, ids), before) <= 1e-6


def test_edits_through_data_need_clear_inference_cache():
    torch.manual_seed(2)
    model = HyenaDNAForCausalLM(small_config()).eval()
    ids = random_ids(1, 40)
    before = cached_logits(model, ids)
    filters_of(model)[0].implicit_filter.output_layer.weight.data.mul_(2)  # bypasses version counters
    assert torch.equal(cached_logits(model, ids), before)  # the documented limitation
    model.clear_inference_cache()
    assert relative_difference(cached_logits(model, ids), autograd_logits(model, ids)) <= 1e-5


def test_training_neither_reads_nor_fills_the_cache_and_gradients_reach_the_filters():
    torch.manual_seed(3)
    model = HyenaDNAForCausalLM(small_config()).eval()
    cached_logits(model, random_ids(1, 30))
    assert all(f._cache for f in filters_of(model))
    model.train()
    assert not any(f._cache for f in filters_of(model))  # train() drops it
    ids = random_ids(2, 30)
    model(ids, labels=ids).loss.backward()
    assert not any(f._cache for f in filters_of(model))
    for f in filters_of(model):
        for name, param in f.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_filters_asked_for_with_autograd_on_are_fresh_and_carry_gradients():
    filter_fn = filters_of(HyenaDNAForCausalLM(small_config()).eval())[0]
    with torch.no_grad():
        filter_fn.spectrum(40, 80)
    kept = dict(filter_fn._cache)
    filters, spectrum = filter_fn.filters(40), filter_fn.spectrum(40, 80)
    assert filters.requires_grad and spectrum.requires_grad
    assert filter_fn._cache.keys() == kept.keys()  # neither read from nor added to the cache
    spectrum.abs().sum().backward()
    assert filter_fn.implicit_filter.output_layer.weight.grad is not None


def test_the_cache_keeps_at_most_cache_bytes_per_layer(monkeypatch):
    model = HyenaDNAForCausalLM(small_config()).eval()
    spectrum_bytes = 32 * (2 * 64 // 2 + 1) * 8  # channels x (n/2 + 1) complex64 at length 64
    monkeypatch.setattr(HyenaFilter, "cache_bytes", 2 * spectrum_bytes)
    for length in (64, 64, 60, 62):
        cached_logits(model, random_ids(1, length))
    cache = filters_of(model)[0]._cache
    assert [key[1] for key in cache] == [60, 62]  # least recently used out
    assert sum(v.numel() * v.element_size() for v in cache.values()) <= 2 * spectrum_bytes
    cached_logits(model, random_ids(1, 200))  # larger than the whole budget: not kept
    assert [key[1] for key in filters_of(model)[0]._cache] == [60, 62]


# --- incremental generation --------------------------------------------------------------------


def greedy_by_full_recomputation(model, prompt: torch.Tensor, new_tokens: int) -> tuple[torch.Tensor, list]:
    sequence, logits = prompt, []
    with torch.no_grad():
        for _ in range(new_tokens):
            last = model(sequence).logits[:, -1]
            logits.append(last)
            sequence = torch.cat([sequence, last.argmax(-1, keepdim=True)], dim=1)
    return sequence, logits


def greedy_incremental(model, prompt: torch.Tensor, new_tokens: int) -> tuple[torch.Tensor, list]:
    cache = HyenaGenerationCache(max_length=prompt.shape[1] + new_tokens)
    sequence, logits = prompt, []
    with torch.inference_mode():
        last = model(prompt, generation_cache=cache).logits[:, -1]
        for step in range(new_tokens):
            logits.append(last)
            next_ids = last.argmax(-1, keepdim=True)
            sequence = torch.cat([sequence, next_ids], dim=1)
            if step + 1 < new_tokens:
                last = model(next_ids, generation_cache=cache).logits[:, -1]
    assert cache.length == prompt.shape[1] + new_tokens - 1
    return sequence, logits


# Prompt lengths at and around the endpoint's length buckets (64, 96, 128, ...) and the short
# conv's reach (1, 2, 3 tokens), each continued across at least one bucket boundary.
@pytest.mark.parametrize(
    ("prompt_length", "new_tokens"),
    [(1, 8), (2, 8), (3, 8), (60, 8), (63, 3), (64, 3), (65, 8), (94, 4), (126, 4), (190, 6)],
)
def test_greedy_incremental_generation_equals_full_recomputation(reference_model, prompt_length, new_tokens):
    prompt = random_ids(2, prompt_length, seed=prompt_length)
    expected, expected_logits = greedy_by_full_recomputation(reference_model, prompt, new_tokens)
    generated, logits = greedy_incremental(reference_model, prompt, new_tokens)
    assert torch.equal(generated, expected)
    for step, (ours, full) in enumerate(zip(logits, expected_logits, strict=True)):
        assert relative_difference(ours, full) <= 1e-5, step


@pytest.mark.parametrize(
    "overrides", [{"hyena_order": 3}, {"short_filter_order": 4}, {"hyena_order": 3, "short_filter_order": 1}]
)
def test_incremental_generation_handles_other_orders_and_short_filter_sizes(overrides):
    torch.manual_seed(4)
    model = HyenaDNAForCausalLM(small_config(**overrides)).eval()
    prompt = random_ids(3, 20, seed=5)
    continuation = random_ids(3, 15, seed=6)
    with torch.no_grad():
        expected = model(torch.cat([prompt, continuation], 1)).logits[:, 20:]
        cache = HyenaGenerationCache(max_length=35)
        model(prompt, generation_cache=cache)
        # several tokens per call are fed one at a time
        got = torch.cat(
            [
                model(continuation[:, :7], generation_cache=cache).logits,
                model(continuation[:, 7:], generation_cache=cache).logits,
            ],
            1,
        )
    assert relative_difference(got, expected) <= 1e-5


def test_generation_cache_refuses_what_it_cannot_do(reference_model):
    prompt = random_ids(1, 10)
    with pytest.raises(ValueError, match="needs eval mode and torch.no_grad"):
        reference_model(prompt, generation_cache=HyenaGenerationCache(20))
    with torch.no_grad():
        with pytest.raises(ValueError, match="takes no padding"):
            mask = torch.ones_like(prompt)
            mask[0, -1] = 0
            reference_model(prompt, attention_mask=mask, generation_cache=HyenaGenerationCache(20))
        with pytest.raises(ValueError, match="longer than this model's max_seq_len=1026"):
            reference_model(prompt, generation_cache=HyenaGenerationCache(2000))
        cache = HyenaGenerationCache(11)
        reference_model(prompt, generation_cache=cache)
        reference_model(prompt[:, :1], generation_cache=cache)
        with pytest.raises(ValueError, match="holds 11 tokens, 12 were asked for"):
            reference_model(prompt[:, :1], generation_cache=cache)


# --- chunked forward (megabase sequences) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "length", "chunk_tokens"),
    [
        ({}, 4096, 1000),
        ({}, 16384, 4096),
        ({"hyena_order": 3}, 5000, 777),
        ({"hyena_order": 4}, 1000, 300),
        ({"short_filter_order": 4}, 300, 2),
        # FFT buffers for ~3 channels a group (small_config has d_model 32): uneven channel groups
        ({"long_conv_group_elements": 3 * 2 * 8192}, 4096, 1000),
    ],
)
def test_chunked_forward_equals_the_ordinary_forward(overrides, length, chunk_tokens, monkeypatch):
    overrides = dict(overrides)
    if "long_conv_group_elements" in overrides:
        monkeypatch.setattr(modeling, "LONG_CONV_GROUP_ELEMENTS", overrides.pop("long_conv_group_elements"))
    torch.manual_seed(5)
    model = hyenadna.HyenaDNAModel(small_config(max_seq_len=16386, **overrides)).eval()
    ids = random_ids(2, length, seed=length)
    with torch.no_grad():
        expected = model(ids).last_hidden_state
    chunked = model.forward_in_chunks(ids, chunk_tokens=chunk_tokens)
    assert relative_difference(chunked, expected) <= 1e-5


def test_chunked_forward_is_for_inference_and_checks_the_length():
    model = hyenadna.HyenaDNAModel(small_config(max_seq_len=100))
    with pytest.raises(ValueError, match="call model.eval"):
        model.forward_in_chunks(random_ids(1, 50), chunk_tokens=16)
    model.eval()
    with pytest.raises(ValueError, match="longer than this model's max_seq_len=100"):
        model.forward_in_chunks(random_ids(1, 101), chunk_tokens=16)


def test_fft_size_of_the_chunked_forward_is_large_enough_and_factors_into_2_3_5():
    for minimum in (1, 2, 3, 7, 2047, 2049, 9999, 2_000_003, 2_097_153):
        size = fast_fft_size(minimum)
        assert minimum <= size <= 2 * minimum
        rest = size
        for radix in (2, 3, 5):
            while rest % radix == 0:
                rest //= radix
        assert rest == 1, size
    assert fast_fft_size(2_000_003) == 2**21  # a megabase: the power of two, 5 % over the minimum
