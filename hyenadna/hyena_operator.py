"""The Hyena operator: the attention-free token mixer of each HyenaDNA block.

For order N (HyenaDNA uses N = 2):
    x_0 .. x_{N-1}, v = ShortConv(Linear(u))            (N + 1 projections, depthwise causal conv)
    for i = N-1 .. 1:  v = LongConv_i(v * x_i)          (implicit filters, FFT convolution)
    y = Linear(v * x_0)
Data-controlled gating (the products) and long implicit convolutions replace attention, at
O(L log L) cost. Everything is causal: output t depends on inputs <= t only.
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration_hyenadna import HyenaDNAConfig
from .fft_conv import fft_causal_conv
from .implicit_filter import HyenaFilter
from .short_conv import CausalDepthwiseConv1d


class HyenaOperator(nn.Module):
    """Hyena mixer (Poli et al. 2023, arXiv 2302.10866), with the reference's parameter names."""

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

    def forward(self, u: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """u: [B, L, d_model] -> [B, L, d_model]; activations stay channel-last throughout.

        keep: optional [B, L, 1] float mask, 0 at padding positions. Zeroing the inputs of both
        convolutions there makes the outputs at real tokens independent of the padding, exactly
        as if the sequence had not been padded (a causal conv sees zeros before the sequence).
        """
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
