"""Traffic lights: states and the split-phase schedule (the world's kernel runs the same program per junction)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from sim.geometry import FloatArray


class LightState(IntEnum):
    GREEN = 0
    YELLOW = 1
    RED = 2


@dataclass(frozen=True)
class LightTiming:
    """Split phasing: light groups turn green one after another.

    :param green_s: green time per group.
    :param yellow_s: yellow time after each green.
    :param all_red_s: clearance time when every group is red.
    """

    green_s: float = 5.0
    yellow_s: float = 2.0
    all_red_s: float = 1.0

    @property
    def phase_s(self) -> float:
        return self.green_s + self.yellow_s + self.all_red_s

    def cycle_s(self, groups: int) -> float:
        return self.phase_s * groups


def light_states(time_s: FloatArray, offset_s: FloatArray, groups: int, timing: LightTiming) -> NDArray[np.int8]:
    """States ``(B, groups)`` of every light group at simulation time ``time_s`` ``(B,)``."""
    phase = np.mod(time_s + offset_s, timing.cycle_s(groups))[:, None] - timing.phase_s * np.arange(groups)
    state = np.full(phase.shape, LightState.RED, dtype=np.int8)
    state[(phase >= 0) & (phase < timing.green_s)] = LightState.GREEN
    yellow = (phase >= timing.green_s) & (phase < timing.green_s + timing.yellow_s)
    state[yellow] = LightState.YELLOW
    return state
