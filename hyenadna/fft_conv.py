"""Causal long convolution through the FFT (convolution theorem), as the Hyena operator uses it.

y[:, t, c] = sum_{s <= t} k[t - s, c] u[:, s, c] + D[c] u[:, t, c]

Zero-padding both signals to n = 2L turns the FFT's circular convolution into the linear (causal)
one: O(L log L) instead of O(L^2). Tensors stay channel-last ([B, L, C], the layout of the
projections around it) and the FFTs run along the sequence dimension, so no transposes are
materialised. The FFTs run in float32 even under bf16 autocast (cuFFT has no bf16 path for
general lengths, and the long sums need the precision).

The backward is written out (as in the Hyena repository's FFTConvFuncv2) rather than left to
autograd: the gradients are correlations with the same spectra, so it costs one rfft and one
irfft of the signal size, and the filter gradient is summed over the batch in the frequency
domain before its single small irfft. Autograd's generic rfft backward runs a full-length complex
FFT instead and keeps more intermediates.
"""

from __future__ import annotations

import torch


class _FFTCausalConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, k: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        length = u.shape[1]
        n = 2 * length
        compute = torch.promote_types(u.dtype, torch.float32)  # bf16/fp16 -> fp32; fp64 stays
        u32, bias32 = u.to(compute), bias.to(compute)
        k_f = torch.fft.rfft(k.to(compute), n=n, dim=0)  # [n/2 + 1, C], broadcast over the batch
        u_f = torch.fft.rfft(u32, n=n, dim=1)  # [B, n/2 + 1, C]
        y = torch.fft.irfft(u_f * k_f, n=n, dim=1)[:, :length]  # [B, L, C]
        ctx.save_for_backward(u, bias, u_f, k_f)
        ctx.dtypes = (u.dtype, k.dtype, bias.dtype)
        return torch.addcmul(y, u32, bias32).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u, bias, u_f, k_f = ctx.saved_tensors
        u_dtype, k_dtype, bias_dtype = ctx.dtypes
        length = u.shape[1]
        n = 2 * length
        g32 = grad_y.to(u_f.real.dtype)
        g_f = torch.fft.rfft(g32, n=n, dim=1)  # [B, n/2 + 1, C]
        # Correlations: du[s] = sum_t g[t] k[t - s], dk[j] = sum_{b,t} g[t] u[t - j].
        grad_u = torch.fft.irfft(g_f * k_f.conj(), n=n, dim=1)[:, :length]
        grad_u = torch.addcmul(grad_u, g32, bias.to(g32.dtype))
        grad_k = torch.fft.irfft((g_f * u_f.conj()).sum(0), n=n, dim=0)[:length]  # [L, C]
        grad_bias = (g32 * u.to(g32.dtype)).sum((0, 1))
        return grad_u.to(u_dtype), grad_k.to(k_dtype), grad_bias.to(bias_dtype)


def fft_causal_conv(u: torch.Tensor, k: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Causal convolution of every channel of `u` with its own long filter, plus the skip term.

    u: [B, L, C] signal; k: [L, C] filters (one per channel); bias: [C] skip weight D.
    Returns [B, L, C] in u's dtype.
    """
    return _FFTCausalConv.apply(u, k, bias)


# ---------------------------------------------------------------------------------------------
# Inference form: no autograd, a precomputed filter spectrum, channel-first signals
#
# In eval mode the filters depend on positions only, so their spectrum is computed once per FFT
# size and kept (HyenaFilter's cache). The signals are channel-first ([B, C, L]) so that every FFT
# runs along contiguous memory: on CPU that is 2-3x faster than an FFT along the strided sequence
# dimension of a channel-last tensor, and transposing first costs as much as it saves.
# ---------------------------------------------------------------------------------------------


def fast_fft_size(minimum: int) -> int:
    """An FFT size >= minimum that factors into small radices: the next power of two, unless the
    smallest 2^a 3^b 5^c is over 20 % smaller (on CPU a power of two is fastest: 2^21 points take
    0.89x the time of 2,025,000 = 2^3 3^4 5^5, the smallest size for a megabase)."""
    power_of_two = 1 << max(0, (minimum - 1).bit_length())
    best = power_of_two
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            size = power35
            while size < minimum:
                size *= 2
            best = min(best, size)
            power35 *= 3
        power5 *= 5
    return power_of_two if power_of_two <= 1.2 * best else best


def filter_spectrum(k: torch.Tensor, n: int) -> torch.Tensor:
    """Spectrum of filters k [L, C] zero-padded to n points, channel-first: [C, n // 2 + 1] complex.

    n must be at least 2L - 1 for the product of spectra to be the linear (causal) convolution.
    """
    compute = torch.promote_types(k.dtype, torch.float32)
    return torch.fft.rfft(k.to(compute).t(), n=n, dim=-1)


def fft_causal_conv_spectrum(u: torch.Tensor, k_f: torch.Tensor, bias: torch.Tensor, n: int) -> torch.Tensor:
    """`fft_causal_conv` for channel-first u [B, C, L] given its filters' `filter_spectrum` (n points).

    Returns [B, C, L] in u's dtype. No autograd: for inference only.
    """
    length = u.shape[-1]
    if n < 2 * length - 1:
        raise ValueError(f"FFT size {n} is too small for a causal convolution of length {length}")
    compute = torch.promote_types(u.dtype, torch.float32)
    u32 = u.to(compute)
    spectrum = torch.fft.rfft(u32, n=n, dim=-1).mul_(k_f)  # [B, C, n/2 + 1]
    y = torch.fft.irfft(spectrum, n=n, dim=-1)[..., :length]
    return torch.addcmul(y, u32, bias.to(compute)[:, None]).to(u.dtype)
