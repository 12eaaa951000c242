"""Counter-based random draws: the same (seed, actor slot, counter) gives the same number on any thread and
in any batch."""

from __future__ import annotations

import numpy as np
from numba import njit

#: Pedestrian slot ``q`` draws as actor slot ``PEDESTRIAN_DRAWS + q`` (a vehicle as its slot): keys that do not
#: depend on how many vehicle slots the world has.
PEDESTRIAN_DRAWS = 1 << 32


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(_nrt=False, cache=True)
def uniform(seed: int, slot: int, counter: int) -> float:
    """A uniform draw in [0, 1) from (seed, slot, counter)."""
    z = _mix(np.uint64(seed) ^ _mix(np.uint64(slot) * np.uint64(0x100000001B3) + np.uint64(counter)))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)
