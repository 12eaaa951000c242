"""The embedded simulator: a batched world of numba kernels behind the Gymnasium API."""

from sim.embedded import jit_cache

jit_cache.install()
