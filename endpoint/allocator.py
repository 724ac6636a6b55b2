"""Keep freed activation buffers in the process instead of handing them back to the kernel.

A forward pass allocates and frees a few dozen activation tensors of 0.5-2 MB per 1 kb sequence.
glibc's malloc serves blocks above its mmap threshold (128 KiB at start, adjusted as blocks are
freed) with fresh mmap()s, and trims the heap top above 2x that threshold, so most requests
fault every page of their activations in again: about a quarter of a 1 kb `score` on one CPU
thread (bench/bench_endpoint.py). Fixing both thresholds makes those buffers come back from the
heap already mapped. Blocks above 32 MiB (glibc's ceiling for the threshold) stay mmap()ed, so a
megabase request still returns its gigabytes to the system when it ends.

There is no Python API for mallopt(3), hence ctypes; on a C library without it (musl, macOS) the
call is skipped and nothing else changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt(3) parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's maximum (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024  # free heap top kept for the next request


@functools.cache
def keep_freed_buffers() -> bool:
    """Set glibc's mmap and trim thresholds once per process; True if the C library took them."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
