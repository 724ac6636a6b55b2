"""Tolerances for comparing float32 model outputs computed in two different ways.

The endpoint sums per-base log-likelihoods in float64, but each term comes from a float32
forward pass whose result depends on the padding and FFT size of the batch it ran in. Two
runs of the same sequence agree per base to PER_BASE_ATOL (asserted directly in
test_inference_tasks.py); a sum of n such terms can therefore differ by up to n times that.
An absolute tolerance that ignores n fails on some CPUs (a 600-term sum differed by 1.2e-5).
"""

from __future__ import annotations

PER_BASE_ATOL = 1e-5


def summed_log_likelihood_atol(n_terms: int) -> float:
    """Worst-case difference of two sums of n_terms per-base log-likelihoods (linear error bound)."""
    return n_terms * PER_BASE_ATOL
