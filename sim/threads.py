"""Running a compiled kernel over disjoint slices of a batch on threads (the kernels release the GIL)."""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def default_threads() -> int:
    """One thread per CPU, at most 8."""
    return min(os.cpu_count() or 1, 8)


@functools.cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="autoloop-sim")


def run_chunked(kernel: Callable[[int, int], object], batch: int, threads: int, min_chunk: int) -> None:
    """Call ``kernel(first, stop)`` over ``[0, batch)`` split into at most ``threads`` slices of at least
    ``min_chunk`` items each (one call in the calling thread when that leaves a single slice)."""
    threads = max(1, min(threads, batch // max(min_chunk, 1)))
    if threads == 1:
        kernel(0, batch)
        return
    bounds = np.linspace(0, batch, threads + 1).astype(int)
    list(_pool(threads).map(lambda chunk: kernel(int(chunk[0]), int(chunk[1])), itertools.pairwise(bounds)))
