"""Causal long convolution through the FFT (convolution theorem), as the Hyena operator uses it.

y[:, t, c] = sum_{s <= t} k[t - s, c] u[:, s, c] + D[c] u[:, t, c]

Zero-padding both signals to n = 2L turns the FFT's circular convolution into the linear (causal)
one: O(L log L) instead of O(L^2). Tensors stay channel-last ([B, L, C], the layout of the
projections around it) and the FFTs run along the sequence dimension, so no transposes are
materialised. The FFTs run in float32 even under bf16 autocast (cuFFT has no bf16 path for
general lengths, and the long sums need the precision).
"""

from __future__ import annotations

import torch


def fft_causal_conv(u: torch.Tensor, k: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Causal convolution of every channel of `u` with its own long filter, plus the skip term.

    u: [B, L, C] signal; k: [L, C] filters (one per channel); bias: [C] skip weight D.
    Returns [B, L, C] in u's dtype.
    """
    length = u.shape[1]
    n = 2 * length
    k_f = torch.fft.rfft(k.float(), n=n, dim=0)  # [n/2 + 1, C], once per call, broadcast over B
    u_f = torch.fft.rfft(u.float(), n=n, dim=1)  # [B, n/2 + 1, C]
    y = torch.fft.irfft(u_f * k_f, n=n, dim=1)[:, :length]  # [B, L, C]
    return torch.addcmul(y, u.float(), bias.float()).to(u.dtype)
