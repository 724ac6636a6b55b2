"""Short causal depthwise convolution (kernel 3 in HyenaDNA) on channel-last activations.

Written as K shifted multiply-adds instead of `nn.Conv1d(groups=channels)`: on CPU the
depthwise Conv1d backward is the slowest op of the whole training step (over half of a Hyena
operator's time at L=8192), while the shifted form is plain elementwise work and needs no
[B, L, C] <-> [B, C, L] transposes. Parameters keep Conv1d's shapes and names (`weight`
[C, 1, K], `bias` [C]) so checkpoints load unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


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
        # x: [B, L, C] -> [B, L, C]
        length = x.shape[1]
        taps = self.weight[:, 0, :].t()  # [K, C]; tap K-1 multiplies x[t], tap K-1-s multiplies x[t-s]
        y = torch.addcmul(self.bias, x, taps[-1])
        for shift in range(1, min(self.kernel_size, length)):
            shifted = F.pad(x[:, : length - shift], (0, 0, shift, 0))  # x[:, t - shift], zeros before 0
            y = torch.addcmul(y, shifted, taps[-1 - shift])
        return y
