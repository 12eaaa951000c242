"""Traffic lights: each junction's split-phase program, or the states a scenario event holds."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.embedded.compiled import MapArrays
from sim.embedded.kernels.codes import GREEN, RED, YELLOW, Params


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def update_lights(m: MapArrays, w: Any, p: Params, b: int) -> None:
    phase_s = p.green_s + p.yellow_s + p.all_red_s
    forced = w.time[b] < w.force_until[b]
    for g in range(w.lights.shape[1]):
        if forced and w.light_force[b, g] >= 0:  # a scenario event sets this junction's lights
            w.lights[b, g] = w.light_force[b, g]
            continue
        j = m.light_junction[g]
        cycle = phase_s * m.junction_phases[j]
        t = (w.time[b] + w.light_offset[b, j]) % cycle - phase_s * m.light_phase[g]
        if 0.0 <= t < p.green_s:
            w.lights[b, g] = GREEN
        elif p.green_s <= t < p.green_s + p.yellow_s:
            w.lights[b, g] = YELLOW
        else:
            w.lights[b, g] = RED
