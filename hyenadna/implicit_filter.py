"""The implicit long-convolution filter of a Hyena operator (HyenaDNA paper, section 3.1).

A filter of length L is not stored: it is computed from positions by a small MLP,

    h(t) = Window(t) * FFN(PositionalEmbedding(t))

with `PositionalEmbedding` = [t, cos(-f w t), sin(-f w t)] (complex exponentials), `FFN` a
Linear/Sin stack and `Window` an exponential decay per channel (`ExponentialModulation`).
The whole [L, channels] filter bank comes out of one batched MLP pass per layer per forward.

Module and attribute names reproduce the LongSafari checkpoint keys
(`filter_fn.pos_emb.z`, `filter_fn.implicit_filter.1.freq`, `filter_fn.modulation.deltas`, ...).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .configuration_hyenadna import HyenaDNAConfig


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

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        # t: [1, L, 1], h: [1, L, channels]
        return h * (torch.exp(-t * self.deltas.abs()) + self.shift)


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
        sin = self._modules["1"]
        h = sin(self._modules["0"](z))
        for index in self.inner_indices:
            h = sin(self._modules[index](h))
        return self._modules[self.output_index](h)


class HyenaFilter(nn.Module):
    """Implicit long filter bank for all channels of all recurrence steps, plus its bias `D`.

    `channels` = d_model * (hyena_order - 1): one filter per channel per long convolution.
    """

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

    def forward(self, length: int) -> torch.Tensor:
        """The filters for sequences of `length` tokens: [length, channels]."""
        z, t = self.pos_emb(length)  # [1, L, emb_dim], [1, L, 1]
        h = self.implicit_filter(z)  # [1, L, channels]
        return self.modulation(t, h)[0]  # [L, channels]
