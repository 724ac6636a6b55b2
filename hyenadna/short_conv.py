"""Short causal depthwise convolution (kernel 3 in HyenaDNA) on channel-last activations.

Written as K shifted multiply-adds instead of `nn.Conv1d(groups=channels)`: on CPU the
depthwise Conv1d backward is the slowest op of the whole training step (over half of a Hyena
operator's time at L=8192), while the shifted form is plain elementwise work on [B, L, C] and
needs no transposes. Forward and backward accumulate in place into one output each (no padded
copies). Parameters keep Conv1d's shapes and names (`weight` [C, 1, K], `bias` [C]) so
checkpoints load unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn


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
