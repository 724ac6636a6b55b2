"""Causal long convolution through the FFT (convolution theorem), as the Hyena operator uses it.

y[..., t] = sum_{s <= t} k[..., t - s] u[..., s] + D u[..., t]

Zero-padding both signals to n >= 2L - 1 turns the FFT's circular convolution into the linear
(causal) one: O(L log L) instead of O(L^2). The FFTs run in float32 even under bf16 autocast
(cuFFT has no bf16 path for general lengths, and the long sums need the precision).
"""

from __future__ import annotations

import torch


def fft_size(length: int) -> int:
    """FFT length for a causal convolution of `length` samples: 2 * length, as the reference uses."""
    return 2 * length


def fft_causal_conv(u: torch.Tensor, k: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Causal convolution of every channel of `u` with its own long filter, plus the skip term.

    u: [B, C, L] signal; k: [C, L] filters (one per channel); bias: [C] skip weight D.
    Returns [B, C, L] in u's dtype.
    """
    length = u.shape[-1]
    n = fft_size(length)
    # One rfft of the filter bank per call, broadcast over the batch.
    k_f = torch.fft.rfft(k.float(), n=n)  # [C, n/2 + 1]
    u_f = torch.fft.rfft(u.float(), n=n)  # [B, C, n/2 + 1]
    y = torch.fft.irfft(u_f * k_f, n=n)[..., :length]  # [B, C, L]
    return (y + u.float() * bias.float().unsqueeze(-1)).to(u.dtype)
