"""The embedded simulator: a batched world of numba kernels behind the Gymnasium API."""
