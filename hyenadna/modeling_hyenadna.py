"""HyenaDNA (Nguyen et al. 2023, arXiv 2306.15794) in Hugging Face form: one file, top to bottom.

    positional embedding -> implicit filter      h(t) = Window(t) * FFN(PositionalEmbedding(t))
    short causal conv                            kernel 3, depthwise, on the input projections
    Hyena operator                               gates x short conv x long implicit FFT conv
    block                                        pre-norm residual Hyena mixer + pre-norm MLP
    backbone                                     embeddings -> blocks -> final LayerNorm
    heads                                        HyenaDNAModel, ForCausalLM, ForSequenceClassification

The causal FFT convolution itself is hand-written (custom backward) and kept apart in
`fft_conv.py`, as mamba keeps its scan.

Inference (eval mode, autograd off) computes the same function faster, and each form is tested
against the autograd forward: the filters and their spectra are cached per length (they depend
on positions and weights, never on the input), the Hyena operator runs channel-first so that
its FFTs read contiguous memory, `HyenaGenerationCache` makes each generated token O(L) instead
of a pass over the sequence, and `forward_in_chunks` bounds memory for megabase sequences.

State-dict keys are those of the LongSafari `*-seqlen-hf` checkpoints
(`hyena.backbone.embeddings.word_embeddings.weight`, `hyena.backbone.layers.N.mixer...`,
`hyena.backbone.ln_f.*`, `lm_head.weight`), so their directories load with `from_pretrained`.

Padding: the reference ignores padding, so with left padding (its tokenizer's default) the pad
tokens leak into the real tokens through the causal convolutions. Here, passing the
tokenizer's `attention_mask` zeroes the padding positions before every convolution, which makes
the outputs at real tokens equal to those of the unpadded sequence. Without a mask the model
computes exactly what the reference computes.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithNoAttention,
    CausalLMOutput,
    SequenceClassifierOutput,
)

from .configuration_hyenadna import HyenaDNAConfig
from .fft_conv import fast_fft_size, fft_causal_conv, fft_causal_conv_spectrum, filter_spectrum


def without_autograd() -> bool:
    """Whether the inference forms apply: autograd off (no_grad / inference_mode) and not being
    traced by torch.compile (their Python-side caches and in-place ops are for eager inference)."""
    return not torch.is_grad_enabled() and not torch.compiler.is_compiling()


# ---------------------------------------------------------------------------------------------
# Implicit long filter (paper section 3.1)
#
# A filter of length L is not stored: it is computed from positions by a small MLP,
#     h(t) = Window(t) * FFN(PositionalEmbedding(t))
# with PositionalEmbedding = [t, cos(-f w t), sin(-f w t)] (complex exponentials), FFN a
# Linear/Sin stack and Window an exponential decay per channel. The whole [L, channels] filter
# bank comes out of one batched MLP pass per layer per forward. Module and attribute names
# reproduce the LongSafari checkpoint keys (`filter_fn.pos_emb.z`, `filter_fn.implicit_filter.1.freq`,
# `filter_fn.modulation.deltas`, ...).
# ---------------------------------------------------------------------------------------------


def complex_exponential_embedding(seq_len: int, emb_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(z [1, seq_len, emb_dim], t [1, seq_len, 1]) as the reference builds them.

    z = [t, Re exp(-i f w), Im exp(-i f w)] with t in [0, 1], w = 2 pi k / seq_len and
    (emb_dim - 1) // 2 bands f from 1e-4 to bands - 1.
    """
    bands = (emb_dim - 1) // 2
    t = torch.linspace(0, 1, seq_len)[None, :, None]
    w = 2 * math.pi * torch.linspace(0, seq_len - 1, seq_len)[None, :, None] / seq_len
    f = torch.linspace(1e-4, bands - 1, bands)[None, None]
    return torch.cat([t, torch.cos(-f * w), torch.sin(-f * w)], dim=-1), t


class PositionalEmbedding(nn.Module):
    """Complex-exponential positional embedding fed to the filter MLP.

    `z` is a parameter (the original trains it with a tiny learning rate), `t` a buffer; both are
    stored in checkpoints and loaded from them.
    """

    def __init__(self, emb_dim: int, seq_len: int) -> None:
        super().__init__()
        z, t = complex_exponential_embedding(seq_len, emb_dim)
        self.z = nn.Parameter(z)  # [1, max_seq_len, emb_dim]
        self.register_buffer("t", t)  # [1, max_seq_len, 1]

    def forward(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.z[:, :length], self.t[:, :length]


class Sin(nn.Module):
    """Periodic activation sin(freq * x), one frequency per MLP unit."""

    def __init__(self, width: int, freq: float, trainable: bool) -> None:
        super().__init__()
        initial = freq * torch.ones(1, width)
        if trainable:
            self.freq = nn.Parameter(initial)
        else:
            self.register_buffer("freq", initial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class ImplicitFilterMLP(nn.Module):
    """FFN of the implicit filter: Linear, Sin, (Linear, Sin) * num_inner_mlps, Linear (no bias).

    The reference reuses ONE Sin module at every Sin position, so checkpoints hold its frequency
    once, at index 1. Children are registered under the reference's `nn.Sequential` indices
    (0, 1, 2, 4, 6 for two inner layers) and the Sin at 1 is applied at every Sin position, which
    gives exactly the checkpoint's keys with no duplicated (tied) tensors to reconcile on load.
    """

    def __init__(self, emb_dim: int, width: int, channels: int, num_inner_mlps: int, sin: Sin) -> None:
        super().__init__()
        self.add_module("0", nn.Linear(emb_dim, width))
        self.add_module("1", sin)
        self.inner_indices = [str(2 + 2 * i) for i in range(num_inner_mlps)]
        for index in self.inner_indices:
            self.add_module(index, nn.Linear(width, width))
        self.output_index = str(2 + 2 * num_inner_mlps)
        self.add_module(self.output_index, nn.Linear(width, channels, bias=False))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # z: [1, L, emb_dim] -> [1, L, channels]
        return self.output_layer(self.features(z))

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """Everything before the output Linear: [1, L, emb_dim] -> [1, L, width]."""
        sin = self._modules["1"]
        h = sin(self._modules["0"](z))
        for index in self.inner_indices:
            h = sin(self._modules[index](h))
        return h

    @property
    def output_layer(self) -> nn.Linear:
        return self._modules[self.output_index]


def modulation_deltas(
    channels: int, fast_decay_pct: float = 0.3, slow_decay_pct: float = 1.5, target: float = 1e-2
):
    """Decay rates [1, 1, channels], spread so channel filters decay to `target` over 30%..150% of L."""
    max_decay = math.log(target) / fast_decay_pct
    min_decay = math.log(target) / slow_decay_pct
    return torch.linspace(min_decay, max_decay, channels)[None, None]


class ExponentialModulation(nn.Module):
    """Window applied to the MLP output: h * (exp(-t |delta_c|) + shift), one decay per channel."""

    def __init__(self, channels: int, shift: float = 0.05) -> None:
        super().__init__()
        self.shift = shift
        self.register_buffer("deltas", modulation_deltas(channels))  # [1, 1, channels]

    def forward(self, t: torch.Tensor, h: torch.Tensor, channels: slice = slice(None)) -> torch.Tensor:
        # t: [1, L, 1], h: [1, L, channels] (or only the `channels` of them)
        return h * (torch.exp(-t * self.deltas[..., channels].abs()) + self.shift)


class HyenaFilter(nn.Module):
    """Implicit long filter bank for all channels of all recurrence steps, plus its bias `D`.

    `channels` = d_model * (hyena_order - 1): one filter per channel per long convolution.

    Inference cache: the filters depend on positions and weights only, never on the input, so in
    eval mode without autograd (`torch.no_grad` / `torch.inference_mode`) the filters of a length
    and their spectra are computed once and kept (least recently used first out, at most
    `cache_bytes` per layer; a filter bank larger than that is recomputed each time). The cache is
    keyed on the weights' identity and in-place version counters, so an optimizer step,
    `load_state_dict`, `.to()` or any in-place edit invalidates it; the one edit it cannot see is
    through `.data` (`p.data.mul_(2)` bypasses version counters): call `clear_inference_cache()`
    after those. Training mode neither reads nor fills it, and gradients flow as without it.
    """

    cache_bytes = 32 << 20

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        channels = config.d_model * (config.hyena_order - 1)
        # D of y = h * u + D u; the reference initialises it with randn.
        self.bias = nn.Parameter(torch.randn(channels))
        self.pos_emb = PositionalEmbedding(config.emb_dim, config.max_seq_len)
        sin = Sin(config.filter_order, config.activation_freq, trainable=config.train_freq)
        self.implicit_filter = ImplicitFilterMLP(
            config.emb_dim, config.filter_order, channels, config.num_inner_mlps, sin
        )
        self.modulation = ExponentialModulation(channels)
        self._cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._cache_stamp: tuple = ()

    def forward(self, length: int) -> torch.Tensor:
        """The filters for sequences of `length` tokens: [length, channels]."""
        z, t = self.pos_emb(length)  # [1, L, emb_dim], [1, L, 1]
        h = self.implicit_filter(z)  # [1, L, channels]
        return self.modulation(t, h)[0]  # [L, channels]

    def filters(self, length: int) -> torch.Tensor:
        """`forward(length)`, from the inference cache when it applies."""
        return self._cached(("filters", length), lambda: self(length))

    def spectrum(self, length: int, n: int) -> torch.Tensor:
        """`filter_spectrum` of the filters for `length` tokens at FFT size n: [channels, n // 2 + 1]."""
        return self._cached(("spectrum", length, n), lambda: filter_spectrum(self(length), n))

    def channel_filters(self, features: torch.Tensor, t: torch.Tensor, channels: slice) -> torch.Tensor:
        """Filters of some channels only, from `implicit_filter.features` of the positions: [L, len(channels)].

        Equal to `forward(L)[:, channels]`; for sequences whose whole filter bank is too large to hold.
        """
        h = F.linear(features, self.implicit_filter.output_layer.weight[channels])
        return self.modulation(t, h, channels)[0]

    def train(self, mode: bool = True) -> HyenaFilter:
        if mode:
            self.clear_inference_cache()
        return super().train(mode)

    def clear_inference_cache(self) -> None:
        self._cache.clear()
        self._cache_stamp = ()

    def _cached(self, key: tuple, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if self.training or not without_autograd():
            return compute()
        device_type = self.bias.device.type
        if torch.is_autocast_enabled(device_type):
            key = (*key, torch.get_autocast_dtype(device_type))
        stamp = tuple((tensor.data_ptr(), tensor._version) for tensor in self._stamped_tensors())
        if stamp != self._cache_stamp:
            self._cache.clear()
            self._cache_stamp = stamp
        value = self._cache.get(key)
        if value is not None:
            self._cache.move_to_end(key)
            return value
        value = compute()
        if value.numel() * value.element_size() <= self.cache_bytes:
            self._cache[key] = value
            while sum(v.numel() * v.element_size() for v in self._cache.values()) > self.cache_bytes:
                self._cache.popitem(last=False)
        return value

    def _stamped_tensors(self) -> Iterator[torch.Tensor]:
        yield from self.parameters()
        yield from self.buffers()


# ---------------------------------------------------------------------------------------------
# Short causal depthwise convolution (kernel 3 in HyenaDNA), channel-last
#
# Written as K shifted multiply-adds instead of `nn.Conv1d(groups=channels)`: on CPU the
# depthwise Conv1d backward is the slowest op of the whole training step (over half of a Hyena
# operator's time at L=8192), while the shifted form is plain elementwise work on [B, L, C] and
# needs no transposes. Forward and backward accumulate in place into one output each (no padded
# copies). Parameters keep Conv1d's shapes and names (`weight` [C, 1, K], `bias` [C]) so
# checkpoints load unchanged.
# ---------------------------------------------------------------------------------------------


class _ShiftedDepthwiseConv(torch.autograd.Function):
    """y[:, t] = bias + sum_s taps[K-1-s] * x[:, t-s] (s = 0..K-1, zeros before the sequence)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        # x: [B, L, C], taps: [K, C], bias: [C]
        kernel, length = taps.shape[0], x.shape[1]
        y = torch.addcmul(bias.to(x.dtype), x, taps[-1].to(x.dtype))
        for shift in range(1, min(kernel, length)):
            y[:, shift:].addcmul_(x[:, :-shift], taps[-1 - shift].to(x.dtype))
        ctx.save_for_backward(x, taps)
        ctx.bias_dtype = bias.dtype
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, taps = ctx.saved_tensors
        kernel, length = taps.shape[0], x.shape[1]
        grad_y = grad_y.contiguous()
        grad_x = grad_y * taps[-1].to(grad_y.dtype)
        accumulate = torch.promote_types(taps.dtype, torch.float32)  # weight grads summed in >= fp32
        grad_taps = torch.zeros_like(taps, dtype=accumulate)
        grad_taps[-1] = (grad_y * x).sum((0, 1), dtype=accumulate)
        for shift in range(1, min(kernel, length)):
            grad_x[:, :-shift].addcmul_(grad_y[:, shift:], taps[-1 - shift].to(grad_y.dtype))
            grad_taps[-1 - shift] = (grad_y[:, shift:] * x[:, :-shift]).sum((0, 1), dtype=accumulate)
        grad_bias = grad_y.sum((0, 1), dtype=accumulate)
        return grad_x, grad_taps.to(taps.dtype), grad_bias.to(ctx.bias_dtype)


def causal_depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x [B, L, C], Conv1d-shaped weight [C, 1, K] and bias [C] -> [B, L, C] (see the class below)."""
    # taps [K, C]: tap K-1 multiplies x[t], tap K-1-s multiplies x[t-s]
    return _ShiftedDepthwiseConv.apply(x, weight[:, 0, :].t(), bias)


def causal_depthwise_conv_channel_first(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """The same convolution on channel-first x [B, C, L] -> [B, C, L], without autograd (inference path).

    Same multiply-adds in the same order as `_ShiftedDepthwiseConv.forward`.
    """
    taps, length = weight[:, 0, :].to(x.dtype), x.shape[-1]  # taps [C, K]
    kernel = taps.shape[1]
    y = torch.addcmul(bias.to(x.dtype)[:, None], x, taps[:, kernel - 1 :])
    for shift in range(1, min(kernel, length)):
        y[..., shift:].addcmul_(x[..., :-shift], taps[:, kernel - 1 - shift : kernel - shift])
    return y


class CausalDepthwiseConv1d(nn.Module):
    """y[:, t, c] = bias[c] + sum_j weight[c, 0, j] * x[:, t - (K - 1) + j, c], zeros before t=0.

    Equal to `nn.Conv1d(C, C, K, groups=C, padding=K - 1)` applied to [B, C, L] and cut to the first
    L outputs (the reference's short filter).
    """

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size))
        self.bias = nn.Parameter(torch.empty(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Conv1d's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = kernel_size.
        bound = 1 / math.sqrt(self.kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return causal_depthwise_conv(x, self.weight, self.bias)  # [B, L, C] -> [B, L, C]


# ---------------------------------------------------------------------------------------------
# Hyena operator: the attention-free token mixer of each block
#
# For order N (HyenaDNA uses N = 2):
#     x_0 .. x_{N-1}, v = ShortConv(Linear(u))            (N + 1 projections, depthwise causal conv)
#     for i = N-1 .. 1:  v = LongConv_i(v * x_i)          (implicit filters, FFT convolution)
#     y = Linear(v * x_0)
# Data-controlled gating (the products) and long implicit convolutions replace attention, at
# O(L log L) cost. Everything is causal: output t depends on inputs <= t only.
# ---------------------------------------------------------------------------------------------


# Reals in one group's FFT buffers in `HyenaOperator.add_in_chunks_` (64 MiB in float32).
LONG_CONV_GROUP_ELEMENTS = 1 << 24


class HyenaOperator(nn.Module):
    """Hyena mixer (Poli et al. 2023, arXiv 2302.10866), with the reference's parameter names.

    One function, three ways to compute it:
    - `forward` with autograd (training, or eval with gradients on): channel-last, the
      hand-written backward of both convolutions;
    - `forward` in eval mode without autograd: channel-first (every FFT along contiguous memory),
      the filters' spectrum from the inference cache; given a `HyenaOperatorState` it also
      records what `step` needs to continue the sequence;
    - `step`: the output for one more token from that state, O(L) per token (incremental generation);
    - `add_in_chunks_`: a sequence too long for one pass (a megabase), memory bounded by
      processing positions in chunks and the long convolution in channel groups.
    """

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.d_model = config.d_model
        self.order = config.hyena_order
        inner_width = config.d_model * (config.hyena_order + 1)
        self.in_proj = nn.Linear(config.d_model, inner_width)
        self.out_proj = nn.Linear(config.d_model, config.d_model)
        self.short_filter = CausalDepthwiseConv1d(inner_width, config.short_filter_order)
        self.filter_fn = HyenaFilter(config)
        self.dropout = nn.Dropout(config.hyena_dropout)

    def forward(
        self, u: torch.Tensor, keep: torch.Tensor | None = None, state: HyenaOperatorState | None = None
    ) -> torch.Tensor:
        """u: [B, L, d_model] -> [B, L, d_model].

        keep: optional [B, L, 1] float mask, 0 at padding positions. Zeroing the inputs of both
        convolutions there makes the outputs at real tokens independent of the padding, exactly
        as if the sequence had not been padded (a causal conv sees zeros before the sequence).
        state: filled for incremental generation (inference only).
        """
        if self.training or not without_autograd():
            if state is not None:
                raise ValueError("incremental generation needs eval mode and torch.no_grad()")
            return self._autograd_forward(u, keep)
        return self._inference_forward(u, keep, state)

    def _autograd_forward(self, u: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        # Activations stay channel-last throughout (no transposes to differentiate through).
        length = u.shape[1]
        z = self.in_proj(u)  # [B, L, (N+1) D]
        if keep is not None:
            z = z * keep
        z = self.short_filter(z)  # [B, L, (N+1) D]
        *gates, v = z.split(self.d_model, dim=-1)  # N gates x_i and v, each [B, L, D]

        # All channels' filters in one pass: [L, (N-1) D] -> [L, N-1, D]
        k = self.filter_fn(length).view(length, self.order - 1, self.d_model)
        bias = self.filter_fn.bias.view(self.order - 1, self.d_model)
        for o, x_i in enumerate(reversed(gates[1:])):
            v = self.dropout(v * x_i)
            if keep is not None:
                v = v * keep
            v = fft_causal_conv(v, k[:, o], bias[o])
        return self.out_proj(v * gates[0])  # [B, L, D]

    def _inference_forward(
        self, u: torch.Tensor, keep: torch.Tensor | None, state: HyenaOperatorState | None
    ) -> torch.Tensor:
        # Channel-first [B, C, L] from the input projection to the output projection.
        length = u.shape[1]
        # W u^T straight into channel-first rows: torch.matmul would compute u W^T and copy its
        # transpose (a full pass over the largest activation). baddbmm, not addmm(out=...): it
        # follows autocast (bf16 evaluation in training_job/evaluation.py).
        weight = self.in_proj.weight.expand(u.shape[0], -1, -1)
        z = torch.baddbmm(self.in_proj.bias[None, :, None], weight, u.transpose(1, 2))  # [B, (N+1) D, L]
        keep = None if keep is None else keep.transpose(1, 2)  # [B, 1, L]
        if keep is not None:
            z *= keep
        if state is not None:
            state.start(self, z)
        z = causal_depthwise_conv_channel_first(z, self.short_filter.weight, self.short_filter.bias)
        *gates, v = z.split(self.d_model, dim=1)  # each [B, D, L]

        n = 2 * length  # the FFT size of the autograd path, so both round alike
        k_f = self.filter_fn.spectrum(length, n).view(self.order - 1, self.d_model, n // 2 + 1)
        bias = self.filter_fn.bias.view(self.order - 1, self.d_model)
        for o, x_i in enumerate(reversed(gates[1:])):
            v = v * x_i
            if keep is not None:
                v *= keep
            if state is not None:
                state.long_inputs[o, :, :, :length] = v
            v = fft_causal_conv_spectrum(v, k_f[o], bias[o], n)
        return F.linear((v * gates[0]).transpose(1, 2), self.out_proj.weight, self.out_proj.bias)

    def step(self, u: torch.Tensor, state: HyenaOperatorState, position: int) -> torch.Tensor:
        """Output [B, d_model] at `position` for its input u [B, d_model], given the state up to it."""
        z = self.in_proj(u)  # [B, (N+1) D]
        kernel = self.short_filter.kernel_size
        state.short_inputs[:, :, position % kernel] = z
        taps = self.short_filter.weight[:, 0, :]  # [C, K]: tap K-1 multiplies x[t], K-1-s x[t-s]
        z = torch.addcmul(self.short_filter.bias, z, taps[:, kernel - 1])
        for shift in range(1, min(kernel, position + 1)):
            z.addcmul_(state.short_inputs[:, :, (position - shift) % kernel], taps[:, kernel - 1 - shift])
        *gates, v = z.split(self.d_model, dim=-1)  # each [B, D]

        bias = self.filter_fn.bias.view(self.order - 1, self.d_model)
        capacity = state.long_inputs.shape[-1]
        for o, x_i in enumerate(reversed(gates[1:])):
            v = v * x_i
            history = state.long_inputs[o]  # [B, D, capacity]
            history[:, :, position] = v
            # y_t = sum_{s <= t} k[t - s] v_s: the last t + 1 taps of the reversed filter line up with v_0..v_t.
            taps_reversed = state.reversed_filters[o, :, capacity - 1 - position :]  # [D, t + 1]
            y = torch.linalg.vecdot(history[:, :, : position + 1], taps_reversed)
            v = torch.addcmul(y, v, bias[o])
        return self.out_proj(v * gates[0])

    def add_in_chunks_(self, hidden_states: torch.Tensor, norm: nn.Module, chunk: int) -> None:
        """hidden_states += self(norm(hidden_states)), in place, for a sequence too long for one
        pass: projections `chunk` positions at a time, the long convolution a group of channels
        at a time. hidden_states: [B, L, d_model]. No autograd.

        Holds N channel-first [B, D, L] tensors (the gates, and the long convolution's input,
        overwritten by its output) plus one chunk's projections and one channel group's FFT buffers.
        """
        batch, length, _ = hidden_states.shape
        d, order, kernel = self.d_model, self.order, self.short_filter.kernel_size
        # x_0 .. x_{N-2}, then v * x_{N-1} (the first long convolution's input), channel-first
        stored = [hidden_states.new_empty(batch, d, length) for _ in range(order)]
        for a in range(0, length, chunk):
            b = min(length, a + chunk)
            # The short conv reaches K-1 positions back: project those again (hidden_states is
            # not modified before the end) rather than carry them over.
            reach = min(a, kernel - 1)
            z = torch.matmul(self.in_proj.weight, norm(hidden_states[:, a - reach : b]).transpose(1, 2))
            z += self.in_proj.bias[:, None]  # [B, (N+1) D, reach + c]
            z = causal_depthwise_conv_channel_first(z, self.short_filter.weight, self.short_filter.bias)
            *gates, v = z[..., reach:].split(d, dim=1)
            for i in range(order - 1):
                stored[i][..., a:b] = gates[i]
            stored[-1][..., a:b] = v * gates[-1]
            del z, gates, v

        # Long convolutions, a group of channels at a time (channels are independent); each
        # group's filters come from the filter MLP's features, computed once for all positions.
        n = fast_fft_size(2 * length - 1)
        # FFT buffers of at most LONG_CONV_GROUP_ELEMENTS reals per group of channels (8 channels
        # of a megabase), whatever the chunk: each group reads the filter features of every position.
        group = max(1, min(d, LONG_CONV_GROUP_ELEMENTS // (batch * n)))
        positions, t = self.filter_fn.pos_emb(length)
        features = None
        for a in range(0, length, chunk):
            part = self.filter_fn.implicit_filter.features(positions[:, a : a + chunk])
            if features is None:
                features = part.new_empty(1, length, part.shape[-1])
            features[:, a : a + chunk] = part
        u = stored[-1]
        for o in range(order - 1):
            if o > 0:
                u *= stored[order - 1 - o]  # v * x_i for the next step of the recurrence
            for c0 in range(0, d, group):
                c1 = min(d, c0 + group)
                channels = slice(o * d + c0, o * d + c1)
                k_f = filter_spectrum(self.filter_fn.channel_filters(features, t, channels), n)
                u[:, c0:c1] = fft_causal_conv_spectrum(u[:, c0:c1], k_f, self.filter_fn.bias[channels], n)
                del k_f
        del features

        x_0 = stored[0]
        for a in range(0, length, chunk):
            gated = (u[..., a : a + chunk] * x_0[..., a : a + chunk]).transpose(1, 2)
            hidden_states[:, a : a + chunk] += F.linear(gated, self.out_proj.weight, self.out_proj.bias)


class HyenaOperatorState:
    """What a Hyena operator keeps to extend its output one token at a time (incremental generation).

    - short_inputs [B, C, K]: the short conv's last K inputs, a ring buffer (position p at slot p % K);
    - long_inputs [N-1, B, D, capacity]: every input so far of each long convolution;
    - reversed_filters [N-1, D, capacity]: the long filters, reversed in time, so that a step's output
      is one dot product per channel over a contiguous slice.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.short_inputs = torch.empty(0)
        self.long_inputs = torch.empty(0)
        self.reversed_filters = torch.empty(0)

    def start(self, operator: HyenaOperator, z: torch.Tensor) -> None:
        """Allocate for a prompt whose short-conv inputs are z [B, C, L]; keep its last K of them."""
        batch, width, length = z.shape
        kernel, d, steps = operator.short_filter.kernel_size, operator.d_model, operator.order - 1
        self.short_inputs = z.new_zeros(batch, width, kernel)
        for position in range(max(0, length - kernel), length):
            self.short_inputs[:, :, position % kernel] = z[:, :, position]
        self.long_inputs = z.new_zeros(steps, batch, d, self.capacity)
        filters = operator.filter_fn.filters(self.capacity).to(z.dtype)  # [capacity, (N-1) D]
        self.reversed_filters = filters.t().reshape(steps, d, self.capacity).flip(-1).contiguous()


# ---------------------------------------------------------------------------------------------
# Block: pre-norm residual Hyena mixer followed by a pre-norm residual MLP
#
#     x = x + HyenaOperator(LayerNorm(x))
#     x = x + MLP(LayerNorm(x))
#
# (The reference writes it as "dropout-add-norm" with the residual carried separately; in eval
# mode, and with its zero residual dropout in training, that is the same function.)
# ---------------------------------------------------------------------------------------------


# GELU's tanh approximation 0.5 x (1 + tanh(a)), a = sqrt(2/pi) (x + 0.044715 x^3), equals
# x sigmoid(2a); on CPU torch's vectorised tanh costs about twice its sigmoid, which makes the
# sigmoid form half the time of F.gelu (it agrees with it to ~5e-7 absolute).
_GELU_2A_LINEAR = 2 * math.sqrt(2 / math.pi)
_GELU_2A_CUBIC = _GELU_2A_LINEAR * 0.044715


def gelu_tanh_inplace(x: torch.Tensor) -> torch.Tensor:
    """F.gelu(x, approximate="tanh") as x * sigmoid(2a), overwriting x (inference only)."""
    two_a = x * x
    two_a.mul_(_GELU_2A_CUBIC).add_(_GELU_2A_LINEAR).mul_(x)
    return x.mul_(two_a.sigmoid_())


class Mlp(nn.Module):
    """fc1 -> GELU (tanh approximation, as the reference) -> fc2."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.d_model, config.d_inner)
        self.fc2 = nn.Linear(config.d_inner, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if without_autograd() and h.device.type == "cpu":
            return self.fc2(gelu_tanh_inplace(h))
        return self.fc2(F.gelu(h, approximate="tanh"))


class HyenaBlock(GradientCheckpointingLayer):
    """norm1 -> mixer -> add, norm2 -> mlp -> add (key names as in LongSafari checkpoints)."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.mixer = HyenaOperator(config)
        self.norm2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.mlp = Mlp(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        keep: torch.Tensor | None = None,
        state: HyenaOperatorState | None = None,
    ) -> torch.Tensor:
        # hidden_states: [B, L, d_model]
        hidden_states = hidden_states + self.mixer(self.norm1(hidden_states), keep, state)
        return hidden_states + self.mlp(self.norm2(hidden_states))

    def step(self, hidden_states: torch.Tensor, state: HyenaOperatorState, position: int) -> torch.Tensor:
        """`forward` for one more token: [B, d_model] at `position` -> [B, d_model]."""
        hidden_states = hidden_states + self.mixer.step(self.norm1(hidden_states), state, position)
        return hidden_states + self.mlp(self.norm2(hidden_states))

    def forward_in_chunks_(self, hidden_states: torch.Tensor, chunk: int) -> None:
        """`forward` in place on [B, L, d_model], `chunk` positions at a time (see HyenaOperator)."""
        length = hidden_states.shape[1]
        self.mixer.add_in_chunks_(hidden_states, self.norm1, chunk)
        for a in range(0, length, chunk):
            part = hidden_states[:, a : a + chunk]
            part += self.mlp(self.norm2(part))


# ---------------------------------------------------------------------------------------------
# Backbone
# ---------------------------------------------------------------------------------------------


class HyenaEmbeddings(nn.Module):
    """Token embedding; rows padded to a multiple of `pad_vocab_size_multiple` (12 -> 16)."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.padded_vocab_size, config.d_model)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(input_ids)  # [B, L] -> [B, L, d_model]


class HyenaLMBackbone(nn.Module):
    """Embeddings -> dropout -> n_layer HyenaBlocks -> final LayerNorm."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.max_seq_len = config.max_seq_len
        self.embeddings = HyenaEmbeddings(config)
        self.dropout = nn.Dropout(config.embed_dropout)
        self.layers = nn.ModuleList([HyenaBlock(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        generation_cache: HyenaGenerationCache | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hidden_states = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        length = hidden_states.shape[1]
        self.check_length(length)
        keep = padding_keep_mask(attention_mask, hidden_states.dtype)
        states: list[HyenaOperatorState | None] = [None] * len(self.layers)
        if generation_cache is not None:
            self._check_generation(generation_cache, keep, output_hidden_states)
            if generation_cache.length > 0:
                return self._extend(hidden_states, generation_cache), []
            generation_cache.check_room(length)
            generation_cache.layers = [HyenaOperatorState(generation_cache.max_length) for _ in self.layers]
            states = generation_cache.layers
        hidden_states = self.dropout(hidden_states)
        all_hidden_states = [hidden_states] if output_hidden_states else []
        for layer, state in zip(self.layers, states, strict=True):
            hidden_states = layer(hidden_states, keep, state)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
        hidden_states = self.ln_f(hidden_states)
        if output_hidden_states:
            all_hidden_states.append(hidden_states)
        if generation_cache is not None:
            generation_cache.length = length
        return hidden_states, all_hidden_states

    def check_length(self, length: int) -> None:
        if length > self.max_seq_len:
            raise ValueError(
                f"sequence of {length} tokens is longer than this model's max_seq_len={self.max_seq_len} "
                "(its implicit filters are defined up to that length); split the sequence into windows "
                "or use a model configured with a larger max_seq_len"
            )

    def _check_generation(
        self, cache: HyenaGenerationCache, keep: torch.Tensor | None, output_hidden_states: bool
    ) -> None:
        if self.training or torch.is_grad_enabled():
            raise ValueError("a generation_cache needs eval mode and torch.no_grad() (or inference_mode)")
        if keep is not None:
            raise ValueError(
                "a generation_cache takes no padding: the rows of one batch must have equal length"
            )
        if output_hidden_states:
            raise ValueError("output_hidden_states is not available with a generation_cache")
        self.check_length(cache.max_length)

    def _extend(self, hidden_states: torch.Tensor, cache: HyenaGenerationCache) -> torch.Tensor:
        """Continue the cached sequence by the tokens embedded in hidden_states [B, T, D], one at a time."""
        cache.check_room(cache.length + hidden_states.shape[1])
        outputs = []
        for index in range(hidden_states.shape[1]):
            hidden = hidden_states[:, index]
            for layer, state in zip(self.layers, cache.layers, strict=True):
                hidden = layer.step(hidden, state, cache.length)
            outputs.append(self.ln_f(hidden))
            cache.length += 1
        return torch.stack(outputs, dim=1)

    @torch.no_grad()
    def forward_in_chunks(self, input_ids: torch.Tensor, chunk_tokens: int) -> torch.Tensor:
        """Final hidden states [B, L, D] of `forward`, for sequences too long for one pass.

        Per-position work (embedding, norms, projections, MLPs) runs on `chunk_tokens` tokens at a
        time, the long convolutions on groups of channels; what stays is a few [B, L, D] tensors.
        Eval mode only; no padding mask (pad behind the sequence: the model is causal).
        """
        if self.training:
            raise ValueError("forward_in_chunks is for inference: call model.eval() first")
        batch, length = input_ids.shape
        self.check_length(length)
        chunk = max(1, chunk_tokens // batch)
        hidden_states = None
        for a in range(0, length, chunk):
            part = self.embeddings(input_ids[:, a : a + chunk])
            if hidden_states is None:
                hidden_states = part.new_empty(batch, length, part.shape[-1])
            hidden_states[:, a : a + chunk] = part
        for layer in self.layers:
            layer.forward_in_chunks_(hidden_states, chunk)
        for a in range(0, length, chunk):
            hidden_states[:, a : a + chunk] = self.ln_f(hidden_states[:, a : a + chunk])
        return hidden_states


class HyenaGenerationCache:
    """Per-layer state for incremental generation: the Hyena counterpart of a KV cache.

        cache = HyenaGenerationCache(max_length=prompt_length + new_tokens)
        logits = model(prompt_ids, generation_cache=cache).logits[:, -1]  # one FFT pass; fills the cache
        logits = model(next_ids[:, None], generation_cache=cache).logits[:, -1]  # O(L) per new token

    The prompt pass is the ordinary inference forward, which also records, per layer, the short
    conv's last inputs and every long-convolution input; each later token then costs one dot
    product per channel with the (cached) long filter instead of a pass over the whole sequence.
    Rows of a batch advance together (equal lengths, no padding). Eval mode, no autograd.
    """

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self.length = 0  # tokens processed so far
        self.layers: list[HyenaOperatorState] = []

    def check_room(self, length: int) -> None:
        if length > self.max_length:
            raise ValueError(
                f"the generation cache holds {self.max_length} tokens, {length} were asked for; "
                "create it with a larger max_length"
            )


def padding_keep_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """[B, L] attention mask (1 = token, 0 = padding) -> [B, L, 1] multiplier, or None if nothing is padded."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask[:, :, None].to(dtype)


# ---------------------------------------------------------------------------------------------
# Pretrained-model base (init, optimizer groups) and the heads
# ---------------------------------------------------------------------------------------------


class HyenaDNAPreTrainedModel(PreTrainedModel):
    """Weight init and HF plumbing shared by the HyenaDNA heads."""

    config_class = HyenaDNAConfig
    config: HyenaDNAConfig
    base_model_prefix = "hyena"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["HyenaBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The reference's init: normal(0.02) Linear/Embedding, GPT-2 scaled residual projections,
        torch default depthwise conv, randn filter bias, and the filter's fixed buffers."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, CausalDepthwiseConv1d):
            bound = 1 / module.kernel_size**0.5  # torch's Conv1d default, as the reference
            init.uniform_(module.weight, -bound, bound)
            init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, Sin):
            init.constant_(module.freq, self.config.activation_freq)
        elif isinstance(module, PositionalEmbedding):
            z, t = complex_exponential_embedding(module.z.shape[1], module.z.shape[2])
            init.copy_(module.z, z)
            init.copy_(module.t, t)
        elif isinstance(module, ExponentialModulation):
            init.copy_(module.deltas, modulation_deltas(module.deltas.shape[-1]))
        elif isinstance(module, HyenaFilter):
            init.normal_(module.bias, mean=0.0, std=1.0)
        elif isinstance(module, HyenaBlock):
            # GPT-2 scheme: residual-path output projections scaled by 1/sqrt(2 n_layer).
            scaled_std = std / (2 * self.config.n_layer) ** 0.5
            init.normal_(module.mixer.out_proj.weight, mean=0.0, std=scaled_std)
            init.normal_(module.mlp.fc2.weight, mean=0.0, std=scaled_std)

    def clear_inference_cache(self) -> None:
        """Drop every layer's cached filters (needed only after editing weights through `.data`)."""
        for module in self.modules():
            if isinstance(module, HyenaFilter):
                module.clear_inference_cache()

    def optimizer_param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Two optimizer groups: `weight_decay` on weight matrices and embeddings, none on the rest.

        nanoGPT's rule (decay parameters of two or more dimensions, not biases or LayerNorm
        weights), plus HyenaDNA's: the implicit filters (positional embedding, Sin MLP and its
        frequencies, bias D) get no decay, as in the reference's `_optim` groups. Each group keeps
        `parameters()` order, so a resumed optimizer state lines up; tied weights appear once and
        frozen ones not at all.
        """
        filters = {
            id(param)
            for module in self.modules()
            if isinstance(module, HyenaFilter)
            for param in module.parameters()
        }
        decay, no_decay = [], []
        for param in self.parameters():
            if param.requires_grad:
                (decay if param.dim() >= 2 and id(param) not in filters else no_decay).append(param)
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

    def configure_optimizers(
        self, weight_decay: float, learning_rate: float, betas: tuple[float, float], device_type: str
    ) -> torch.optim.AdamW:
        """AdamW over `optimizer_param_groups`, with the fused kernel on CUDA (as nanoGPT's)."""
        return torch.optim.AdamW(
            self.optimizer_param_groups(weight_decay),
            lr=learning_rate,
            betas=betas,
            fused=device_type == "cuda",
        )


class HyenaDNAModel(HyenaDNAPreTrainedModel):
    """The bare backbone: token ids -> final-LayerNorm hidden states [B, L, d_model]."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__(config)
        self.backbone = HyenaLMBackbone(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.backbone.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.backbone.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        generation_cache: HyenaGenerationCache | None = None,
        **kwargs,
    ) -> BaseModelOutputWithNoAttention | tuple:
        """generation_cache: an empty `HyenaGenerationCache` makes this the prompt pass of an
        incremental generation (it is filled); a filled one continues the sequence by input_ids."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        output_hidden_states = bool(output_hidden_states or self.config.output_hidden_states)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        hidden_states, all_hidden_states = self.backbone(
            input_ids, inputs_embeds, attention_mask, output_hidden_states, generation_cache
        )
        all_hidden_states = tuple(all_hidden_states) if output_hidden_states else None
        if not return_dict:
            return (hidden_states, all_hidden_states) if output_hidden_states else (hidden_states,)
        return BaseModelOutputWithNoAttention(
            last_hidden_state=hidden_states, hidden_states=all_hidden_states
        )

    def forward_in_chunks(self, input_ids: torch.Tensor, chunk_tokens: int = 65536) -> torch.Tensor:
        """Last hidden states [B, L, d_model] with memory bounded for very long sequences (a
        megabase): see `HyenaLMBackbone.forward_in_chunks`."""
        return self.backbone.forward_in_chunks(input_ids, chunk_tokens)


class HyenaDNAForCausalLM(HyenaDNAPreTrainedModel):
    """Backbone + LM head over the padded vocabulary; `labels` give the next-token loss."""

    _tied_weights_keys = {"lm_head.weight": "hyena.backbone.embeddings.word_embeddings.weight"}

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__(config)
        self.hyena = HyenaDNAModel(config)
        self.lm_head = nn.Linear(config.d_model, config.padded_vocab_size, bias=False)
        self.post_init()

    # get/set_input_embeddings: PreTrainedModel's delegate to the base model (`hyena`, the
    # base_model_prefix), which owns the embedding.

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head = new_embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        generation_cache: HyenaGenerationCache | None = None,
        **kwargs,
    ) -> CausalLMOutput | tuple:
        """labels: [B, L] token ids (normally input_ids); shifted here, -100 positions ignored.

        The loss is the mean next-token cross-entropy over the non-ignored positions.
        generation_cache: incremental generation, see `HyenaGenerationCache`.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.hyena(
            input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            generation_cache=generation_cache,
        )
        logits = self.lm_head(outputs.last_hidden_state)  # [B, L, padded_vocab]
        loss = None
        if labels is not None:
            loss = next_token_loss(logits, labels)
        if not return_dict:
            return _as_tuple(loss, logits, outputs.hidden_states)
        return CausalLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


def _as_tuple(loss: torch.Tensor | None, logits: torch.Tensor, hidden_states: tuple | None) -> tuple:
    """A head's output with return_dict=False, in HF's order: (loss?, logits, hidden_states?)."""
    output = (logits,) + ((hidden_states,) if hidden_states is not None else ())
    return ((loss,) + output) if loss is not None else output


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of position t's logits against labels[t + 1] (-100 ignored), in float32."""
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    shift_labels = labels[:, 1:].reshape(-1).to(logits.device)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=-100)


class HyenaDNAForSequenceClassification(HyenaDNAPreTrainedModel):
    """Backbone + linear `score` head read at each sequence's last real token (causal summary)."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.hyena = HyenaDNAModel(config)
        self.score = nn.Linear(config.d_model, config.num_labels, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.hyena(
            input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.score(outputs.last_hidden_state)  # [B, L, num_labels]
        last = last_token_index(input_ids, attention_mask, self.config.pad_token_id, logits.shape[1])
        pooled_logits = logits[torch.arange(logits.shape[0], device=logits.device), last]  # [B, num_labels]
        loss = None
        if labels is not None:
            loss = self.classification_loss(pooled_logits, labels.to(logits.device))
        if not return_dict:
            return _as_tuple(loss, pooled_logits, outputs.hidden_states)
        return SequenceClassifierOutput(loss=loss, logits=pooled_logits, hidden_states=outputs.hidden_states)

    def classification_loss(self, pooled_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Regression (1 label), single-label (integer labels) or multi-label, as HF heads decide."""
        problem_type = self.config.problem_type
        if problem_type is None:
            if self.num_labels == 1:
                problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem_type = "single_label_classification"
            else:
                problem_type = "multi_label_classification"
        if problem_type == "regression":
            return F.mse_loss(pooled_logits.squeeze(-1).float(), labels.float().view(-1))
        if problem_type == "single_label_classification":
            return F.cross_entropy(pooled_logits.view(-1, self.num_labels).float(), labels.view(-1))
        return F.binary_cross_entropy_with_logits(pooled_logits.float(), labels.float())


def last_token_index(
    input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, pad_token_id: int | None, length: int
) -> torch.Tensor | int:
    """Index of each row's last real token: from the attention mask, else the last non-pad id.

    Works for left padding (the last position) and right padding alike.
    """
    if attention_mask is not None:
        real = attention_mask.bool()
    elif input_ids is not None and pad_token_id is not None:
        real = input_ids != pad_token_id
    else:
        return length - 1
    positions = torch.arange(length, device=real.device)
    return torch.where(real, positions, -1).amax(dim=-1).clamp(min=0)
